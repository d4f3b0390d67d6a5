#!/usr/bin/env node
/**
 * The `warden` executable: runs the CLI with the process's arguments and sets the exit code.
 * @module
 */
import { runCli } from './run-cli.js';

process.exitCode = await runCli(process.argv.slice(2));
