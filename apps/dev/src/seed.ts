/** Example packages for a new dev workspace, made by hexrepo's own tarball writer. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createTarball } from '@hexrepo/tarball';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/**
 * A mix.exs for an Erlang package. Mix compiles a Hex dependency with Mix when "mix" is among its
 * build_tools (Mix.Dep.Loader takes the first of mix, rebar3 that the lock lists), and that needs a
 * mix.exs; Erlang sources in src/ are compiled by Mix's own erlang compiler, so neither rebar3 nor
 * Elixir code is involved. A Hex consumer takes the dependencies from the registry, not from here.
 */
function mixExs(module: string, app: string, deps: string): string {
  return [
    `defmodule ${module}.MixProject do`,
    '  use Mix.Project',
    '',
    '  def project do',
    `    [app: :${app}, version: "0.1.0", language: :erlang, deps: [${deps}]]`,
    '  end',
    '',
    '  def application do',
    '    [extra_applications: []]',
    '  end',
    'end',
    '',
  ].join('\n');
}

/**
 * Two Erlang packages that both Mix and rebar3 can fetch and compile, each without the other tool
 * installed: `greeter` depends on `hello`. Each carries a mix.exs and a rebar.config, with
 * build_tools ["mix", "rebar3"], as an Erlang package published for both communities does.
 */
export function examplePackages(): { file: string; tarball: Uint8Array }[] {
  const hello = createTarball({ name: 'hello', version: '0.1.0', description: 'Says hello (a hexrepo dev example)', licenses: ['Apache-2.0'], buildTools: ['mix', 'rebar3'] }, [
    { path: 'mix.exs', contents: text(mixExs('Hello', 'hello', '')) },
    { path: 'rebar.config', contents: text('{erl_opts, [debug_info]}.\n{deps, []}.\n') },
    { path: 'src/hello.erl', contents: text('-module(hello).\n-export([world/0]).\n\nworld() -> <<"hello, world">>.\n') },
    { path: 'src/hello.app.src', contents: text('{application, hello, [{description, "Says hello"}, {vsn, "0.1.0"}, {applications, [kernel, stdlib]}]}.\n') },
  ]);
  const greeter = createTarball(
    {
      name: 'greeter',
      version: '0.1.0',
      description: 'Greets, using hello (a hexrepo dev example)',
      licenses: ['Apache-2.0'],
      buildTools: ['mix', 'rebar3'],
      requirements: [{ package: 'hello', requirement: '~> 0.1' }],
    },
    [
      { path: 'mix.exs', contents: text(mixExs('Greeter', 'greeter', '{:hello, "~> 0.1"}')) },
      { path: 'rebar.config', contents: text('{erl_opts, [debug_info]}.\n{deps, [{hello, "~> 0.1"}]}.\n') },
      { path: 'src/greeter.erl', contents: text('-module(greeter).\n-export([greet/0]).\n\ngreet() -> hello:world().\n') },
      { path: 'src/greeter.app.src', contents: text('{application, greeter, [{description, "Greets"}, {vsn, "0.1.0"}, {applications, [kernel, stdlib, hello]}]}.\n') },
    ],
  );
  return [
    { file: 'hello-0.1.0.tar', tarball: hello.tarball },
    { file: 'greeter-0.1.0.tar', tarball: greeter.tarball },
  ];
}

export async function seed(tarballsDir: string): Promise<string[]> {
  const written: string[] = [];
  for (const { file, tarball } of examplePackages()) {
    await writeFile(join(tarballsDir, file), tarball);
    written.push(file);
  }
  return written;
}
