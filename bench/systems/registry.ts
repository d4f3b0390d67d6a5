/**
 * Loads a system's module by name. Lazily, so a worker child only loads the library it runs (its memory and
 * start-up are then that library's alone).
 * @module
 */
import type { BenchSettings, SystemName } from '../settings.js';
import type { BenchSystem } from './system.js';

/** The system named `name`, configured from the run's settings. */
export async function loadSystem(name: SystemName, settings: BenchSettings): Promise<BenchSystem> {
  switch (name) {
    case 'warden-pg':
      return (await import('./warden.js')).wardenSystem('postgres', settings);
    case 'warden-sqlite':
      return (await import('./warden.js')).wardenSystem('sqlite', settings);
    case 'graphile':
      return (await import('./graphile-worker.js')).graphileSystem(settings);
    case 'pg-boss':
      return (await import('./pg-boss.js')).pgBossSystem(settings);
    case 'bullmq':
      return (await import('./bullmq.js')).bullmqSystem(settings);
    case 'raw-pg':
      return (await import('./raw-postgres.js')).rawPostgresSystem(settings);
    case 'raw-sqlite':
      return (await import('./raw-sqlite.js')).rawSqliteSystem(settings);
  }
}
