"""A fake cloud metadata plane: AWS IMDS, GCP metadata, Azure Scheduled Events, webhooks and
signals, failure modes included. State lives in :class:`fake_imds.model.MetadataPlane`."""
