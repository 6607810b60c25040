#!/bin/sh
# MinIO set-up for dualcheck (Kubernetes: minio-setup-job.yaml; compose: the minio-setup service).
set -eu
export MC_CONFIG_DIR=/tmp/.mc
until mc alias set store http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null \
      && mc admin info store >/dev/null; do
  echo "waiting for MinIO"; sleep 5
done
for b in "$FOOTAGE_BUCKET" "$BIOMETRICS_BUCKET"; do
  mc mb --ignore-existing --with-lock "store/$b"
  mc version enable "store/$b"
done
mc admin policy create store dualcheck /setup/policy.json
mc admin user add store "$APP_ACCESS_KEY" "$APP_SECRET_KEY"
mc admin policy attach store dualcheck --user "$APP_ACCESS_KEY" || true  # already attached
echo "buckets and user ready"
