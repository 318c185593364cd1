export { parseConsult, RESERVED_WORDS, type Term, type TermLimits } from './terms.js';
export { printConsult, printTerm } from './print.js';
export { binaryTerm, termPairs, termText } from './term-access.js';
export { readRequirements, requirementsTerm, type DependencyInput } from './requirements.js';
export { guessBuildTools, metadataFromTerms, metadataToTerms, parseMetadata, type Metadata, type MetadataInput } from './metadata.js';
export { readTar, TAR_MTIME, writeTar, type TarEntry, type TarEntryType, type TarWriteEntry } from './tar.js';
export { checkContents, safeEntryPath, type ContentFile } from './paths.js';
export { checkTarballSize, parseTarball, resolveLimits, TARBALL_MEMBERS, type ParsedTarball, type ParseTarballOptions } from './tarball.js';
export { createTarball, type CreatedTarball, type CreateTarballOptions, type TarballFileInput } from './create.js';
