/**
 * What a run produced, as the report and the chart read it.
 * @module
 */
import type { MachineInfo } from './machine.js';
import type { BenchSettings, SystemName } from './settings.js';
import type { Figure } from './stats.js';
import type { BenchSystem } from './systems/system.js';
import type { Workload } from './workloads/workload.js';

/** One system's outcome in one workload. */
export interface SystemOutcome {
  system: SystemName;
  /** `ok`: measured; `na`: not applicable or not available (see `reason`); `error`: a repetition failed. */
  status: 'ok' | 'na' | 'error';
  reason?: string;
  /** Metric key → median and range over the repetitions that succeeded. */
  figures: Record<string, Figure>;
  errors: string[];
}

/** One workload's outcomes. */
export interface WorkloadOutcome {
  workload: Workload;
  outcomes: SystemOutcome[];
}

/** A whole run. */
export interface RunResult {
  settings: BenchSettings;
  machine: MachineInfo;
  /** The Warden code measured (see provenance.ts). */
  code: string;
  startedAt: Date;
  finishedAt: Date;
  /** 1-minute load average when the run ended. */
  loadAtEnd: number;
  systems: BenchSystem[];
  workloads: WorkloadOutcome[];
}

/** The median of `metric` for `system` in `workload`, if measured. */
export function median(run: RunResult, workload: string, system: SystemName, metric: string): number | undefined {
  const outcome = run.workloads.find((w) => w.workload.id === workload)?.outcomes.find((o) => o.system === system);
  const value = outcome?.figures[metric]?.median;
  return value === undefined || Number.isNaN(value) ? undefined : value;
}
