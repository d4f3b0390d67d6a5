/**
 * Summarizes `.cpuprofile` files written by `npm run bench -- --cpu-prof DIR`: the functions with the most
 * self time, and the share of time spent idle (waiting on the database), per profile; and `.heapprofile` files
 * written by `--alloc-prof DIR`: the functions that allocate the most (freed objects included), per profile.
 * Run: `npx tsx bench/profile-summary.ts DIR [top]`.
 * @module
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Self time per function (name + file:line), in ms, largest first. */
export function selfTimes(profile: CpuProfile): { name: string; ms: number }[] {
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const totals = new Map<string, number>();
  profile.samples.forEach((id, k) => {
    const node = byNode.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url ? `${relative(process.cwd(), url.replace(/^file:\/\//, ''))}:${lineNumber + 1}` : '';
    const name = `${functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
    totals.set(name, (totals.get(name) ?? 0) + (profile.timeDeltas[k] ?? 0) / 1000);
  });
  return [...totals].map(([name, ms]) => ({ name, ms })).sort((a, b) => b.ms - a.ms);
}

/** A sampling heap profile (`HeapProfiler.stopSampling`): a call tree whose nodes carry the bytes allocated there. */
interface HeapProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapProfileNode[];
}

/** Bytes allocated per function (name + file:line), largest first. */
export function selfAllocations(head: HeapProfileNode): { name: string; bytes: number }[] {
  const totals = new Map<string, number>();
  const stack = [head];
  while (stack.length > 0) {
    const node = stack.pop()!;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url ? `${relative(process.cwd(), url.replace(/^file:\/\//, ''))}:${lineNumber + 1}` : '';
    const name = `${functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
    totals.set(name, (totals.get(name) ?? 0) + node.selfSize);
    stack.push(...node.children);
  }
  return [...totals].map(([name, bytes]) => ({ name, bytes })).sort((a, b) => b.bytes - a.bytes);
}

const dir = process.argv[2];
if (!dir) throw new Error('Expected a directory of .cpuprofile or .heapprofile files: npx tsx bench/profile-summary.ts DIR [top]');
const top = Number(process.argv[3] ?? 15);
for (const file of (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile') || f.endsWith('.heapprofile')).sort()) {
  const text = await readFile(join(dir, file), 'utf8');
  if (file.endsWith('.heapprofile')) {
    const rows = selfAllocations((JSON.parse(text) as { head: HeapProfileNode }).head);
    const total = rows.reduce((sum, r) => sum + r.bytes, 0);
    console.log(`\n${file}: ${(total / 1e6).toFixed(1)} MB allocated (sampled)`);
    for (const r of rows.slice(0, top)) console.log(`  ${((r.bytes / total) * 100).toFixed(1).padStart(5)}%  ${(r.bytes / 1e6).toFixed(1).padStart(7)} MB  ${r.name}`);
    continue;
  }
  const profile = JSON.parse(text) as CpuProfile;
  const rows = selfTimes(profile);
  const total = rows.reduce((sum, r) => sum + r.ms, 0);
  console.log(`\n${file}: ${(total / 1000).toFixed(2)} s sampled`);
  for (const r of rows.slice(0, top)) console.log(`  ${((r.ms / total) * 100).toFixed(1).padStart(5)}%  ${r.ms.toFixed(0).padStart(6)} ms  ${r.name}`);
}
