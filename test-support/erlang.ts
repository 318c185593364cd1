/**
 * Test support: run Erlang code with the hex_core modules bundled in Debian's rebar3
 * (r3_hex_tarball, r3_hex_registry, r3_hex_api_*; hex_core 0.7.1) on the code path.
 * The rebar3 escript is a zip archive; it is extracted once per machine with Erlang's own `zip`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Why the Erlang cross-checks cannot run here, or null when they can. */
export function erlangUnavailable(): string | null {
  if (spawnSync('erl', ['-version'], { stdio: 'ignore' }).status !== 0) return 'erl not found (apt-get install erlang-nox)';
  if (!existsSync(rebar3Path())) return 'rebar3 not found (apt-get install rebar3)';
  return null;
}

function rebar3Path(): string {
  const found = spawnSync('sh', ['-c', 'command -v rebar3'], { encoding: 'utf8' }).stdout.trim();
  return found || '/usr/bin/rebar3';
}

let ebinDir: string | undefined;

/** The folder holding rebar3's r3_hex_*.beam files (extracted on first use). */
export function hexCoreEbin(): string {
  if (ebinDir) return ebinDir;
  const dir = join(tmpdir(), 'hexrepo-rebar3-escript');
  const ebin = join(dir, 'rebar', 'ebin');
  if (!existsSync(join(ebin, 'r3_hex_registry.beam'))) {
    mkdirSync(dir, { recursive: true });
    const script = [`{ok, S} = escript:extract(${JSON.stringify(rebar3Path())}, []),`, `{archive, Bin} = lists:keyfind(archive, 1, S),`, `{ok, _} = zip:extract(Bin, [{cwd, ${JSON.stringify(dir)}}]),`, `halt(0).`].join(' ');
    execFileSync('erl', ['-noshell', '-eval', script], { stdio: 'inherit' });
  }
  if (!readdirSync(ebin).includes('r3_hex_tarball.beam')) throw new Error(`no r3_hex_tarball.beam in ${ebin}`);
  ebinDir = ebin;
  return ebin;
}

/**
 * Evaluate Erlang expressions (a sequence ending in a value, no trailing dot) with hex_core on the path.
 * The value is printed with `~p` and returned as text; a crash throws with Erlang's output.
 */
export function runErlang(expressions: string, opts: { cwd?: string } = {}): string {
  const script = `R = begin ${expressions} end, io:format("~p~n", [R]), halt(0).`;
  const res = spawnSync('erl', ['-noshell', '-pa', hexCoreEbin(), '-eval', script], { encoding: 'utf8', cwd: opts.cwd, timeout: 60_000 });
  if (res.status !== 0) throw new Error(`erl failed (status ${res.status}):\n${res.stdout}\n${res.stderr}`);
  return res.stdout.trim();
}

/** An Erlang binary literal `<<1,2,...>>` for bytes (for passing data into runErlang). */
export function erlBinary(bytes: Uint8Array): string {
  return `<<${Array.from(bytes).join(',')}>>`;
}

/** An Erlang string literal for a file path or text. */
export function erlString(text: string): string {
  return JSON.stringify(text);
}
