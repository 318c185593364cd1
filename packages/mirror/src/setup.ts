/** What to tell Mix and rebar3 users so they fetch through a mirror. */
import { HEXPM_PUBLIC_KEY, type Upstream } from './layout.js';

/**
 * Set-up lines for a mirror served at `url`. A mirror of hex.pm keeps hex.pm's signatures, so the
 * clients keep their built-in key and only change the URL (Mix's HEX_MIRROR / mirror_url,
 * rebar3's HEX_CDN / rebar_packages_cdn); any other upstream needs its own key on the clients.
 */
export function mirrorSetupLines(url: string, upstream: Upstream): string[] {
  const name = upstream.repository;
  if (name === 'hexpm' && upstream.publicKeyPem === HEXPM_PUBLIC_KEY) {
    return [`Mix:    HEX_MIRROR=${url} mix deps.get   (or once: mix hex.config mirror_url ${url})`, `rebar3: HEX_CDN=${url} rebar3 get-deps   (or {rebar_packages_cdn, "${url}"}. in ~/.config/rebar3/rebar.config)`];
  }
  const mix = name === 'hexpm' ? `mix hex.repo set hexpm --url ${url} --public-key public_key` : `mix hex.repo add ${name} ${url} --public-key public_key`;
  // rebar3 takes the URL of a repository named hexpm from HEX_CDN / rebar_packages_cdn only.
  const cdn = name === 'hexpm' ? `, with HEX_CDN=${url} (or {rebar_packages_cdn, "${url}"}.)` : '';
  return [
    `upstream key: curl -o public_key ${url}/public_key   (the upstream's own key: the mirror serves its files as the upstream signed them)`,
    `Mix:    ${mix}`,
    `rebar3: {hex, [{repos, replace, [#{name => <<"${name}">>, repo_url => <<"${url}">>, repo_public_key => <<"…contents of public_key…">>}]}]}.${cdn}`,
  ];
}
