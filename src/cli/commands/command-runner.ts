/**
 * The shape every CLI command has, and how the program builder runs one.
 * @module
 */
import type { CliIo } from '../cli-io.js';

/**
 * A command: takes its parsed options (global options included) and the output streams, and resolves to the
 * process exit code. Commands never call `process.exit`; they throw for failures, which `runCli` reports.
 */
export type CliCommand<TOptions> = (options: TOptions, io: CliIo) => Promise<number>;

/** Runs a command with options from commander and records its exit code. Provided by `runCli`. */
export type CommandRunner = <TOptions>(command: CliCommand<TOptions>, options: TOptions) => Promise<void>;
