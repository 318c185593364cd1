/** What a user needs to point Mix and rebar3 at a repository. */
export interface ClientSetupInput {
  repository: string;
  /** The URL clients fetch from (no trailing slash needed). */
  url: string;
  /** Path of the public key file as the user should type it. */
  publicKeyPath: string;
  publicKeyPem: string;
  fingerprint: string;
  /** Names of the repository's dependency policies (Hex 2.5), to show how to turn each on. */
  policies?: readonly string[];
}

/** How to turn a dependency policy on: Hex 2.5 enforces it on deps.get when HEX_POLICY names it (or `mix hex.config policy`). */
export function policySetupLine(repository: string, policy: string): string {
  return `HEX_POLICY=${repository}/${policy} mix deps.get`;
}

/** The exact client configuration lines: `mix hex.repo add` (both forms) and rebar3's repos entry. */
export function clientSetup(input: ClientSetupInput): { mix: string; mixFetch: string; mixDep: string; rebar3: string; policies: string[] } {
  const url = input.url.replace(/\/+$/, '');
  const pem = input.publicKeyPem.trimEnd().replace(/\n/g, '\\n');
  return {
    mix: `mix hex.repo add ${input.repository} ${url} --public-key ${input.publicKeyPath}`,
    mixFetch: `mix hex.repo add ${input.repository} ${url} --fetch-public-key ${input.fingerprint}`,
    mixDep: `{:PACKAGE, "~> VERSION", repo: "${input.repository}"}`,
    policies: (input.policies ?? []).map((name) => policySetupLine(input.repository, name)),
    rebar3: ['{hex, [{repos, [#{name => <<"' + input.repository + '">>,', '                  repo_url => <<"' + url + '">>,', '                  repo_public_key => <<"' + pem + '">>}]}]}.'].join('\n'),
  };
}

/** The set-up lines as one block of text for terminals. */
export function formatClientSetup(input: ClientSetupInput): string {
  const s = clientSetup(input);
  return [
    'Mix (the repository name must be exactly this one):',
    `  ${s.mix}`,
    '  or, fetching the key from the server and checking its fingerprint:',
    `  ${s.mixFetch}`,
    `  then depend on packages with ${s.mixDep}`,
    ...(s.policies.length > 0 ? ['', 'Dependency policies (Hex 2.5; or "mix hex.config policy REPO/NAME" to keep one on):', ...s.policies.map((l) => `  ${l}`)] : []),
    '',
    'rebar3 (rebar.config or ~/.config/rebar3/rebar.config):',
    ...s.rebar3.split('\n').map((l) => `  ${l}`),
  ].join('\n');
}
