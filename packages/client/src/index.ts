export { ApiClient, type ApiAdvisory, type ApiOwner, type ApiPackage, type ApiRelease, type PublishOutcome } from './api.js';
export { httpFiles } from './files.js';
export { failureOf, repositoryRoot, type ServerOptions } from './http.js';
export { repositoryOfNames, SignedReader, type Fetcher, type PackageVersions, type SignedRelease } from './signed-reader.js';
