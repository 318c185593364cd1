/**
 * A bucket on a Ceph RGW started for an e2e test: a plain S3 client to look inside it, the
 * environment the hexrepo CLI needs to reach it, and store URLs for prefixes in it.
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { RgwServer } from '@hexrepo/test-support/ceph-rgw';

export interface RgwBucket {
  /** An S3 client on the gateway (path-style, checksums only when required, as RGW wants). */
  raw: S3Client;
  /** AWS_* variables for a hexrepo process talking to the gateway. */
  env: Record<string, string>;
  /** The `--store` URL of `prefix` in the bucket. */
  url(prefix: string): string;
}

/** Create `bucket` on `rgw` and return what a test needs to use it. */
export async function rgwBucket(rgw: RgwServer, bucket: string): Promise<RgwBucket> {
  const raw = new S3Client({
    endpoint: rgw.endpoint,
    region: rgw.region,
    forcePathStyle: true,
    credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  await raw.send(new CreateBucketCommand({ Bucket: bucket }));
  return {
    raw,
    env: { AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    url: (prefix) => `s3://${bucket}/${prefix}?endpoint=${rgw.endpoint}&region=us-east-1`,
  };
}
