/** Example packages for a new dev workspace, made by hexrepo's own tarball writer. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createTarball } from '@hexrepo/tarball';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Two Erlang packages that rebar3 can fetch and compile: `greeter` depends on `hello`. */
export function examplePackages(): { file: string; tarball: Uint8Array }[] {
  const hello = createTarball(
    { name: 'hello', version: '0.1.0', description: 'Says hello (a hexrepo dev example)', licenses: ['Apache-2.0'], buildTools: ['rebar3'] },
    [
      { path: 'src/hello.erl', contents: text('-module(hello).\n-export([world/0]).\n\nworld() -> <<"hello, world">>.\n') },
      { path: 'src/hello.app.src', contents: text('{application, hello, [{description, "Says hello"}, {vsn, "0.1.0"}, {applications, [kernel, stdlib]}]}.\n') },
    ],
  );
  const greeter = createTarball(
    {
      name: 'greeter',
      version: '0.1.0',
      description: 'Greets, using hello (a hexrepo dev example)',
      licenses: ['Apache-2.0'],
      buildTools: ['rebar3'],
      requirements: [{ package: 'hello', requirement: '~> 0.1' }],
    },
    [
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
