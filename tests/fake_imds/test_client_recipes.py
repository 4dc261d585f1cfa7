"""The real-client recipes of docs/fake_imds.md, as they are written there (issue 12, item 6):
``ec2-metadata`` pointed at the fake through its URL attributes, google-auth's ``ping()`` and
``google.auth.default()`` through ``GCE_METADATA_IP`` / ``GCE_METADATA_HOST``, and compute-engine
credentials refreshed from ``service-accounts/default/token``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import urllib3
from ec2_metadata import EC2Metadata

from fake_imds.sync import SyncFakeImds


def ec2_metadata_for(url: str) -> EC2Metadata:
    """The recipe: the package reads four URL attributes, all derived from the server's URL."""
    client = EC2Metadata(urllib3.PoolManager(retries=False))
    client.service_url = f"{url}/latest/"
    client.dynamic_url = f"{client.service_url}dynamic/"
    client.metadata_url = f"{client.service_url}meta-data/"
    client.userdata_url = f"{client.service_url}user-data/"
    return client


def test_ec2_metadata_reads_the_node_fields_a_termination_handler_needs(
    imds: SyncFakeImds,
) -> None:
    client = ec2_metadata_for(imds.url)
    assert client.public_ipv4 == "198.51.100.12"
    assert client.public_hostname == "ec2-198-51-100-12.compute-1.amazonaws.com"
    assert client.kernel_id == "aki-0f1e2d3c4b5a69788"
    keys = client.public_keys
    assert list(keys) == ["spot-harness"]
    assert (keys["spot-harness"].openssh_key or "").startswith("ssh-ed25519 ")


def test_google_auth_default_finds_the_fake_and_its_credentials_refresh(
    imds: SyncFakeImds,
) -> None:
    """``google.auth.default()`` pings GCE_METADATA_IP, then reads the project from
    GCE_METADATA_HOST, and the compute-engine credentials it returns refresh from
    ``service-accounts/default/token``: the recipe's environment, in a fresh interpreter (the
    library reads it when imported)."""
    script = textwrap.dedent(
        """
        import json
        import google.auth
        import google.auth.transport.requests
        credentials, project = google.auth.default()
        credentials.refresh(google.auth.transport.requests.Request())
        print(json.dumps({"project": project, "kind": type(credentials).__module__,
                          "token": credentials.token[:10], "valid": credentials.valid}))
        """
    )
    host = f"127.0.0.1:{imds.port}"
    env = {
        **os.environ,
        "GCE_METADATA_IP": host,
        "GCE_METADATA_HOST": host,
        "GCE_METADATA_TIMEOUT": "30",  # ping's 3s default can pass on a busy machine
        "NO_PROXY": "127.0.0.1",
        "GOOGLE_APPLICATION_CREDENTIALS": "",
        "CLOUDSDK_CONFIG": "/nonexistent",
    }
    env.pop("GOOGLE_CLOUD_PROJECT", None)
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "project": "spot-harness-sim",
        "kind": "google.auth.compute_engine.credentials",
        "token": "ya29.fake-",
        "valid": True,
    }
    served = [r.path for r in imds.requests()]
    assert "/computeMetadata/v1/instance/service-accounts/default/token" in served
