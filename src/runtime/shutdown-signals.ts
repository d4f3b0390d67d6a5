/** What {@link handleShutdownSignals} needs: something that stops gracefully and then closes. */
export interface Stoppable {
  stop(): Promise<void>;
  close(): Promise<void>;
}

/** Options for {@link handleShutdownSignals}. */
export interface ShutdownSignalOptions {
  /** @default ["SIGTERM", "SIGINT"] */
  signals?: NodeJS.Signals[];
  /** Exit the process after a graceful stop (code 0) and on a second signal (code 130). @default true */
  exit?: boolean;
  /** Called when the first signal arrives, e.g. to log. */
  onSignal?: (signal: NodeJS.Signals) => void;
}

/**
 * First SIGTERM/SIGINT: stop claiming, let in-flight jobs finish within the grace period, then close.
 * Second signal: exit at once (jobs still running are rescued by another worker after their lease expires).
 * Returns a function that removes the handlers; called while a signal's stop and close are running, it removes them
 * once those have finished (with `exit`, the process exits first), so a second signal still exits with 130.
 * Warden never installs these by itself.
 */
export function handleShutdownSignals(target: Stoppable, options: ShutdownSignalOptions = {}): () => void {
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const exit = options.exit ?? true;
  let stopping = false;
  /** Set while the first signal's stop, close and exit run; the remover then leaves the handlers to it. */
  let closing = false;
  let removeRequested = false;
  const remove = () => {
    for (const s of signals) process.off(s, handler);
  };
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      if (exit) process.exit(130);
      return;
    }
    stopping = true;
    closing = true;
    options.onSignal?.(signal);
    void target
      .stop()
      .then(() => target.close())
      .then(
        () => exit && process.exit(0),
        () => exit && process.exit(1),
      )
      .finally(() => {
        closing = false;
        if (removeRequested) remove();
      });
  };
  for (const s of signals) process.on(s, handler);
  return () => {
    removeRequested = true;
    // The caller may be done (its worker stopped) while the close this chain runs is not: without a handler a second
    // signal would get Node's default action and kill the process mid-close, instead of exiting with 130.
    if (!closing) remove();
  };
}
