/**
 * HTML for the web pages: one escaping function and one layout. Every value that reaches a page
 * goes through `esc` (or `attr`), so text from tarballs (names, descriptions, links) is inert.
 */

/** Text escaped for an HTML text node or a double-quoted attribute. */
export function esc(text: string | number | null | undefined): string {
  return String(text ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A link target from package metadata: http(s) only, anything else (javascript:, data:) is dropped. */
export function safeHref(url: string): string | null {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

/** An HTML fragment, marked so it is not escaped twice. */
export interface Html {
  html: string;
}

export function raw(html: string): Html {
  return { html };
}

/** Tagged template (named `h`, not `html`, so formatters leave the markup as written): interpolated strings are escaped, `Html` values and arrays of them are inserted as is. */
export function h(strings: TemplateStringsArray, ...values: (string | number | null | undefined | Html | Html[])[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => {
    if (Array.isArray(v)) out += v.map((h) => h.html).join('');
    else if (v !== null && typeof v === 'object') out += v.html;
    else out += esc(v);
    out += strings[i + 1]!;
  });
  return { html: out };
}

/** Seconds since the epoch as a date people read, in UTC. */
export function day(seconds: number | null | undefined): string {
  return seconds === null || seconds === undefined ? 'unknown' : new Date(seconds * 1000).toISOString().slice(0, 10);
}

export interface LayoutOptions {
  title: string;
  /** Who is logged in, for the header. */
  user: string | null;
  /** The search box's value. */
  query?: string;
  /** The CSRF token for the logout form, when logged in. */
  csrf?: string;
}

/** The page around `body`: header with search, main landmark, footer; styles and script from /-/assets/. */
export function layout(opts: LayoutOptions, body: Html): string {
  const account = opts.user
    ? h`<a href="/-/tokens">Tokens</a>
        <form method="post" action="/-/logout" class="inline"><input type="hidden" name="csrf" value="${opts.csrf ?? ''}"><button type="submit">Log out ${opts.user}</button></form>`
    : h`<a href="/-/login">Log in</a>`;
  return `<!doctype html>
${
  h`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${opts.title} · hexrepo</title>
<link rel="stylesheet" href="/-/assets/app.css">
<script type="module" src="/-/assets/app.js"></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <a class="brand" href="/-/">hexrepo</a>
  <form class="search" role="search" method="get" action="/-/search">
    <label for="q" class="visually-hidden">Search packages</label>
    <input id="q" name="q" type="search" placeholder="Search packages" value="${opts.query ?? ''}">
    <button type="submit">Search</button>
  </form>
  <nav aria-label="Account" class="account">${account}</nav>
</header>
<main id="main" tabindex="-1">
${body}
</main>
<footer class="foot"><p>Served by hexrepo.</p></footer>
</body>
</html>`.html
}
`;
}
