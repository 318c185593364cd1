/**
 * The README of a release, read from its tarball's contents.tar.gz and rendered to HTML with
 * marked, then sanitised with js-xss's allow-list (no script, no event handler, no javascript: or
 * data: URL, no style): a README is text written by whoever published, shown on this origin.
 */
import { gunzipSync } from 'node:zlib';
import { Marked } from 'marked';
import xss from 'xss';
import { readTar } from '@hexrepo/tarball';

/** A README larger than this is not rendered (the page links to the tarball instead). */
const MAX_README_BYTES = 512 * 1024;
/** contents.tar.gz is inflated up to this many bytes to look for the README. */
const MAX_CONTENTS_BYTES = 64 * 1024 * 1024;

/** The prefix of every id in a rendered README. */
const ID_PREFIX = 'user-content-';

const marked = new Marked({ gfm: true, async: false });

// xss is CommonJS: Node's ESM loader gives its exports as the default export only.
const { FilterXSS, getDefaultWhiteList, safeAttrValue } = xss as unknown as typeof import('xss');
const allowed = getDefaultWhiteList();
// Tables and headings keep their alignment; nothing else gains attributes.
for (const tag of ['h1', 'h2', 'h3', 'h4', 'h5', 'h6']) allowed[tag] = ['id'];
allowed.code = ['class'];
allowed.input = ['type', 'checked', 'disabled'];
const sanitiser = new FilterXSS({
  whiteList: allowed,
  stripIgnoreTag: true,
  stripIgnoreTagBody: ['script', 'style', 'iframe', 'object', 'embed', 'template', 'noscript'],
  safeAttrValue: (tag, name, value, cssFilter) => {
    if (tag === 'input' && name === 'type') return value === 'checkbox' ? value : '';
    // A README's ids get a prefix of their own (as on GitHub), so none can take the id of a part of
    // the page around it: the Copy buttons copy the element with their target's id, the first one.
    if (name === 'id') return value === '' ? '' : safeAttrValue(tag, name, `${ID_PREFIX}${value}`, cssFilter);
    if (name === 'href' && value.startsWith('#') && value.length > 1) return safeAttrValue(tag, name, `#${ID_PREFIX}${value.slice(1)}`, cssFilter);
    if (name === 'href' || name === 'src') {
      const v = value.trim();
      // Relative links and http(s) only; the default filter already refuses javascript:, this also refuses data: and the rest.
      if (/^[a-z][a-z0-9+.-]*:/i.test(v) && !/^(https?|mailto):/i.test(v)) return '';
    }
    return safeAttrValue(tag, name, value, cssFilter);
  },
});

/** Render Markdown to sanitised HTML. */
export function renderMarkdown(markdown: string): string {
  return sanitiser.process(marked.parse(markdown) as string);
}

/** Plain text as a preformatted block (a README that is not Markdown). */
function renderText(text: string): string {
  return `<pre>${text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)}</pre>`;
}

/**
 * The rendered README of a package tarball, or null when it has none (or it is too big to show).
 * The top-level README.md (any case) is preferred, then README and README.txt.
 */
export function readmeOf(tarball: Uint8Array): string | null {
  const contents = readTar(tarball).find((e) => e.name === 'contents.tar.gz');
  if (!contents) return null;
  let inner: Uint8Array;
  try {
    inner = gunzipSync(contents.data, { maxOutputLength: MAX_CONTENTS_BYTES });
  } catch {
    return null;
  }
  const files = readTar(inner).filter((e) => e.type === 'file' && !e.name.includes('/'));
  const pick = (re: RegExp) => files.find((e) => re.test(e.name));
  const file = pick(/^readme\.(md|markdown)$/i) ?? pick(/^readme(\.txt)?$/i);
  if (!file || file.size > MAX_README_BYTES) return null;
  const text = Buffer.from(file.data).toString('utf8');
  return /\.(md|markdown)$/i.test(file.name) ? renderMarkdown(text) : renderText(text);
}
