/**
 * The machine a run measured: what the report must state so figures can be compared across runs.
 * @module
 */
import { connect } from 'node:net';
import { cpus, freemem, loadavg, release, totalmem } from 'node:os';
import { serverVersion } from './postgres-admin.js';
import type { BenchSettings } from './settings.js';

/** Facts about the machine and the servers. */
export interface MachineInfo {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  os: string;
  node: string;
  postgres: string;
  redis: string;
  /** 1-minute load average when the run started: other processes sharing the machine show up here. */
  loadAtStart: number;
}

/** Asks Redis for its version with a bare `INFO server` (no client library needed). */
function redisVersion(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let data = '';
    const done = (value: string) => {
      socket.destroy();
      resolve(value);
    };
    socket.setTimeout(2_000, () => done('unreachable'));
    socket.on('error', () => done('unreachable'));
    socket.on('connect', () => socket.write('INFO server\r\n'));
    socket.on('data', (chunk) => {
      data += chunk.toString();
      const match = /redis_version:([^\r\n]+)/.exec(data);
      if (match) done(match[1]!);
    });
  });
}

/** Collects the machine's facts and the servers' versions. */
export async function describeMachine(settings: BenchSettings): Promise<MachineInfo> {
  const cpu = cpus();
  return {
    cores: cpu.length,
    cpuModel: cpu[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    os: `${process.platform} ${release()}`,
    node: process.version,
    postgres: await serverVersion(settings.pgUrl).catch(() => 'unreachable'),
    redis: await redisVersion(settings.redis.host, settings.redis.port),
    loadAtStart: Math.round(loadavg()[0]! * 100) / 100,
  };
}

/** Free memory in GiB (logged at the end, to spot a run that swapped or starved). */
export function freeGiB(): number {
  return Math.round((freemem() / 1024 ** 3) * 10) / 10;
}
