/** Waits until `pending` is empty, promises added meanwhile included; false when `signal` aborted first. */
export async function settledUnlessAborted(pending: Set<Promise<unknown>>, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return pending.size === 0;
  let stop!: () => void;
  const aborted = new Promise<void>((resolve) => (stop = resolve));
  signal.addEventListener('abort', stop, { once: true });
  try {
    while (pending.size > 0) {
      await Promise.race([Promise.allSettled([...pending]), aborted]);
      if (signal.aborted) return false;
    }
    return true;
  } finally {
    signal.removeEventListener('abort', stop);
  }
}
