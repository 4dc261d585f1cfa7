#!/bin/sh
# A spot-interruption handler in plain shell: curl for the metadata service (IMDSv2, with a
# token) and for S3 (path-style requests signed with curl's own --aws-sigv4, so the same script
# works against real S3). Progress lives in S3 only (checkpoints/position), written after every
# output, so a terminate loses at most the item in progress.
#
# Environment (set by the harness, as on a real machine): AWS_EC2_METADATA_SERVICE_ENDPOINT,
# AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, HARNESS_BUCKET,
# HARNESS_JOB ({"items": N, "seconds_per_item": S}).
set -eu

IMDS=${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254/}
S3="${AWS_ENDPOINT_URL_S3:?}/${HARNESS_BUCKET:?}"
ITEMS=$(printf '%s' "${HARNESS_JOB:-{\}}" | sed -n 's/.*"items": *\([0-9]*\).*/\1/p')
ITEMS=${ITEMS:-20}
PAUSE=$(printf '%s' "${HARNESS_JOB:-{\}}" | sed -n 's/.*"seconds_per_item": *"\{0,1\}\([0-9.]*\).*/\1/p')
PAUSE=${PAUSE:-0.2}

noticed() {
    token=$(curl -sf -m 2 -X PUT "${IMDS}latest/api/token" \
        -H 'X-aws-ec2-metadata-token-ttl-seconds: 60') || return 1
    curl -sf -m 2 -o /dev/null -H "X-aws-ec2-metadata-token: $token" \
        "${IMDS}latest/meta-data/spot/instance-action"
}

s3() {  # s3 CURL-ARGS...: a signed request
    curl -sf -m 5 --aws-sigv4 "aws:amz:${AWS_REGION:-us-east-1}:s3" \
        --user "${AWS_ACCESS_KEY_ID:?}:${AWS_SECRET_ACCESS_KEY:?}" "$@"
}

put() {  # put KEY VALUE: retried, as S3 may throttle
    for attempt in 1 2 3 4 5; do
        if s3 -X PUT -H 'Content-Type: application/octet-stream' --data-binary "$2" \
            -o /dev/null "$S3/$1"; then return 0; fi
        sleep 0.2
    done
    echo "PUT $1 failed after $attempt attempts" >&2
    return 1
}

done_items=$(s3 "$S3/checkpoints/position" || echo 0)
echo "starting at item $done_items"
while [ "$done_items" -lt "$ITEMS" ]; do
    if noticed; then
        echo "notice seen at item $done_items: progress is already in S3, stopping"
        exit 0
    fi
    sleep "$PAUSE"                      # the work
    put "outputs/item-$(printf '%04d' "$done_items")" "result $done_items"
    done_items=$((done_items + 1))
    put checkpoints/position "$done_items"
done
echo "all $ITEMS items done"
