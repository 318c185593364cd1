/**
 * The in-memory registry keeps each package's `names`/`versions` entry encoded and re-encodes only
 * the packages that changed: after any sequence of changes and flushes, the files it writes must be
 * byte for byte what a full encode of the same state gives.
 */
import { readFileSync } from 'node:fs';
import { compareVersions, type ReleaseFacts, type Retirement } from '@hexrepo/core';
import { buildNames, buildVersions, loadPrivateKey } from '@hexrepo/registry';
import { MemoryStore } from '@hexrepo/storage';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CachedOutput } from '../src/cache.js';
import { RegistryIndex, type ReleaseState } from '../src/registry-index.js';
import { GOLDEN_KEY } from './helpers.js';

const key = loadPrivateKey(readFileSync(GOLDEN_KEY, 'utf8'));

const facts = (name: string, version: string): ReleaseFacts => ({ name, version, innerChecksum: new Uint8Array(32).fill(1), outerChecksum: new Uint8Array(32).fill(2), dependencies: [] });

type Op = { op: 'put'; pkg: number; version: string; mtime: number } | { op: 'remove'; pkg: number; nth: number } | { op: 'retire'; pkg: number; nth: number } | { op: 'flush' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('put' as const), pkg: fc.nat(199), version: fc.constantFrom('0.1.0', '1.0.0', '1.0.1', '1.10.0', '2.0.0-rc.1', '2.0.0'), mtime: fc.integer({ min: 0, max: 4_000_000_000_000 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('remove' as const), pkg: fc.nat(199), nth: fc.nat(5) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('retire' as const), pkg: fc.nat(199), nth: fc.nat(5) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('flush' as const) }) },
);

describe('RegistryIndex: names and versions assembled from kept entries', () => {
  it('after any changes and flushes, the written names and versions equal a full encode of the same releases', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
        const states = new Map<string, Map<string, ReleaseState>>();
        const index = new RegistryIndex('acme', key, (name, version) => states.get(name)?.get(version));
        const store = new MemoryStore();
        const outputs = new Map<string, CachedOutput>();
        const model = new Map<string, Map<string, number>>();
        const check = async (): Promise<void> => {
          await index.flush(store, outputs, null);
          const names = [...model.keys()].sort();
          const retired = (name: string, versions: string[]): number[] => versions.flatMap((v, i) => (states.get(name)?.get(v)?.retired ? [i] : []));
          const expectedNames = buildNames({ repository: 'acme', packages: names.map((n) => ({ name: n, updatedAt: { seconds: Math.floor(Math.max(...model.get(n)!.values()) / 1000), nanos: 0 } })) }, key);
          const expectedVersions = buildVersions(
            {
              repository: 'acme',
              packages: names.map((n) => {
                const versions = [...model.get(n)!.keys()].sort(compareVersions);
                return { name: n, versions, retired: retired(n, versions) };
              }),
            },
            key,
          );
          expect(Buffer.from((await store.get('names'))!.body).equals(Buffer.from(expectedNames))).toBe(true);
          expect(Buffer.from((await store.get('versions'))!.body).equals(Buffer.from(expectedVersions))).toBe(true);
        };
        // About 100 packages to start with: the entries are kept in blocks of 64, and changes must reach each block.
        for (let i = 0; i < 200; i += 4) {
          const name = `pkg_${i}`;
          index.put({ file: `${name}-1.0.0.tar`, size: 100, mtimeMs: i * 1000, facts: facts(name, '1.0.0') });
          model.set(name, new Map([['1.0.0', i * 1000]]));
        }
        for (let i = 0; i < 200; i++)
          if (i % 4 !== 0 && i % 3 === 0) {
            const name = `pkg_${i}`;
            index.put({ file: `${name}-0.1.0.tar`, size: 100, mtimeMs: i * 1000, facts: facts(name, '0.1.0') });
            model.set(name, new Map([['0.1.0', i * 1000]]));
          }
        await check();
        for (const o of ops) {
          const name = `pkg_${o.op === 'flush' ? 0 : o.pkg}`;
          const versions = [...(model.get(name)?.keys() ?? [])].sort(compareVersions);
          if (o.op === 'put') {
            index.put({ file: `${name}-${o.version}.tar`, size: 100, mtimeMs: o.mtime, facts: facts(name, o.version) });
            if (!model.has(name)) model.set(name, new Map());
            model.get(name)!.set(o.version, o.mtime);
          } else if (o.op === 'remove' && versions.length > 0) {
            const v = versions[o.nth % versions.length]!;
            index.remove(name, v);
            model.get(name)!.delete(v);
            if (model.get(name)!.size === 0) model.delete(name);
          } else if (o.op === 'retire' && versions.length > 0) {
            const v = versions[o.nth % versions.length]!;
            const retirement: Retirement = { reason: 'security' };
            if (!states.has(name)) states.set(name, new Map());
            const s = states.get(name)!;
            s.set(v, s.get(v)?.retired ? {} : { retired: retirement });
            index.touch(name);
          } else if (o.op === 'flush' && model.size > 0) await check();
        }
        if (model.size > 0) await check();
      }),
      { numRuns: 40 },
    );
  });
});
