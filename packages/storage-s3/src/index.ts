export { S3Store, parseS3Url, ETAG_METADATA_KEY, type S3StoreOptions, type S3Credentials } from './s3.js';
