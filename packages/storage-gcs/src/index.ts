export { GcsStore, parseGcsUrl, ETAG_METADATA_KEY, type GcsStoreOptions } from './gcs.js';
