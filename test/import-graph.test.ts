import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { repoRoot } from '../src/dev/services.js';

/**
 * The import graph of src/, type-only imports included: eslint's no-cycle ignores `import type`,
 * but a type cycle still means two modules cannot be read (or moved) one without the other.
 */
function importGraph(dir: string): Map<string, string[]> {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) files.push(p);
    }
  };
  walk(dir);
  const graph = new Map<string, string[]>();
  const specifier = /^\s*(?:import|export)\s[^'"]*?['"](\.{1,2}\/[^'"]+)['"]/gm;
  for (const f of files) {
    const deps = [...readFileSync(f, 'utf8').matchAll(specifier)].map((m) => relative(repoRoot, resolve(dirname(f), m[1]!.replace(/\.js$/, '.ts'))));
    graph.set(relative(repoRoot, f), deps);
  }
  return graph;
}

/** Strongly connected components with more than one module (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

test('the cycle finder sees a type-only cycle', () => {
  const g = new Map([
    ['a.ts', ['b.ts']],
    ['b.ts', ['a.ts']],
    ['c.ts', ['a.ts']],
  ]);
  assert.deepEqual(cycles(g), [['a.ts', 'b.ts']]);
});

test('src/ has no import cycle, counting type-only imports', () => {
  assert.deepEqual(cycles(importGraph(join(repoRoot, 'src'))), []);
});

test('no file in src/ is longer than 400 lines', () => {
  const long = [...importGraph(join(repoRoot, 'src')).keys()]
    .map((f) => ({ f, lines: readFileSync(join(repoRoot, f), 'utf8').split('\n').length }))
    .filter((x) => x.lines > 400)
    .map((x) => `${x.f}: ${x.lines}`);
  assert.deepEqual(long, []);
});
