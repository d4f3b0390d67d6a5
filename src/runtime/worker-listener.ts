/**
 * A worker's subscription to wake-ups from other processes and, on PostgreSQL, to the jobs enqueues hand it.
 * @module
 */
import type { Clock } from '../clock/clock.js';
import type { Driver } from '../driver/driver.js';
import type { TypedEmitter } from '../events/typed-emitter.js';
import type { JobRow } from '../job/job-record.js';

/** What a {@link WorkerListener} needs from its worker. */
export interface WorkerListenerDeps {
  driver: Driver;
  events: TypedEmitter;
  /** Reads when a handed job was received. */
  clock: Clock;
  workerId: string;
  /** Jobs may be due in `queue` (in any queue when undefined): the claim loop looks at once. */
  notify: (queue?: string) => void;
  /** Jobs may be leased to the worker that it never received (a lost connection or read): it looks before claiming. */
  onPossiblyUnreceived: () => void;
  /**
   * A job handed to the worker, counted already, to start or buffer; `slotsLeft` as the enqueue left them;
   * `receivedAt` (clock ms) when its notice came: its lease and queue were last confirmed then, by the enqueue that
   * handed it (a cancel between that enqueue's commit and the notice is not seen).
   */
  take: (row: JobRow, slotsLeft: number, receivedAt: number) => void;
  /** Counts a job handed to the worker as it is received. */
  onHandedOff: () => void;
  /**
   * The job `jobId` handed to the worker whose notice came but whose row could not be read (the read failed, or
   * found the job no longer the worker's): it is never received. By id, as a hand-back may also have taken it back
   * (before or after): the hand-off is settled once. Called before `onPossiblyUnreceived`.
   */
  onHandoffMissed: (jobId: string) => void;
  /**
   * Whether a hand-back of unreceived jobs already handed this job back (`UnreceivedJobs.handedBack`): its notice
   * came late, and it must not start.
   */
  handedBack: (row: JobRow) => boolean;
  /** The enqueues of this process in flight, settled; null when none (see `EnqueuesInFlight`). @default none */
  enqueuesSettled?: () => Promise<void> | null;
}

/**
 * Listens for the worker (`driver.listen`, when the driver has `crossProcessWakeup`): wake-ups go to `notify`, and
 * with `capabilities.handoff` the jobs enqueues hand the worker go to `take`, each once the enqueues of this process
 * then in flight have settled, so a job enqueued here starts after its `job:enqueued`.
 */
export class WorkerListener {
  readonly #deps: WorkerListenerDeps;
  #unlisten: (() => Promise<void>) | null = null;
  #handoff = false;
  /** A claim that registers for hand-off was sent (see {@link WorkerListener.willRegister}). */
  #registered = false;
  /** Handed jobs received and waiting for this process's enqueues in flight before they are taken, by id. */
  readonly #waiting = new Map<string, JobRow>();

  constructor(deps: WorkerListenerDeps) {
    this.#deps = deps;
  }

  /** Subscribed with hand-off: the worker's claims may register it, and its shutdown hands back what came late. */
  get handoff(): boolean {
    return this.#handoff;
  }

  /**
   * The handed jobs received and not yet taken (waiting for this process's enqueues), by id: the worker holds them,
   * so a hand-back of unreceived jobs leaves them alone and heartbeats renew their leases (an enqueue's reply may
   * be slow to come). Empty once stopped: then the shutdown's hand-back takes them.
   */
  get waiting(): ReadonlyMap<string, JobRow> {
    return this.#waiting;
  }

  /**
   * Forgets a waiting job whose lease a heartbeat found gone (cancelled meanwhile): it is not taken when the
   * enqueues settle. @returns Whether it was waiting.
   */
  drop(id: string): boolean {
    return this.#waiting.delete(id);
  }

  /** Subscribed and not stopped: a job handed now can still be taken (after `stop`, the hand-back takes it). */
  get listening(): boolean {
    return this.#unlisten !== null;
  }

  /** Subscribes, when the driver can wake workers across processes; otherwise does nothing. */
  async start(): Promise<void> {
    const { driver, events, workerId, notify, onPossiblyUnreceived } = this.#deps;
    if (!driver.capabilities.crossProcessWakeup || !driver.listen) return;
    const handoff = driver.capabilities.handoff;
    this.#unlisten = await driver.listen({
      onWake: (queue) => notify(queue),
      onReconnect: () => {
        // Jobs handed to this worker while the connection was down were leased to it, and their rows lost.
        if (handoff) onPossiblyUnreceived();
        notify();
      },
      onError: (error) => events.emit('error', { error, context: 'listening for wake-ups' }),
      ...(handoff ? {
        handoff: {
          workerId,
          onJob: (row, slotsLeft) => this.#receive(row, slotsLeft),
          onMissed: (jobId) => {
            this.#deps.onHandoffMissed(jobId);
            onPossiblyUnreceived();
            notify();
          },
        },
      } : {}),
    });
    this.#handoff = handoff;
  }

  /**
   * Ends wake-ups (no claim follows) and hand-offs: the registration is withdrawn first, which waits for an enqueue
   * handing this worker a job right now; every job handed before is then committed, and none follows.
   */
  async stop(): Promise<void> {
    const { driver, events, workerId } = this.#deps;
    // Without a registering claim there is no registration (and, before migrations, maybe no table to look in).
    if (this.#handoff && this.#registered) {
      try {
        await driver.handoffWithdraw?.({ workerId });
      } catch (error) {
        // Dropping the LISTEN connection below frees the hand-off lock: no enqueue hands this worker a job after.
        events.emit('error', { error, context: 'withdrawing the hand-off registration' });
      }
    }
    const unlisten = this.#unlisten;
    this.#unlisten = null;
    this.#waiting.clear();
    await unlisten?.();
  }

  /**
   * A claim that registers this worker for hand-off is about to be sent (whatever its outcome, it may have
   * registered): {@link stop} withdraws the registration.
   */
  willRegister(): void {
    this.#registered = true;
  }

  /** {@link stop} once `starting` (this listener's {@link start}) has settled, whether or not it succeeded. */
  async stopAfter(starting: Promise<void>): Promise<void> {
    await starting.catch(() => undefined);
    await this.stop();
  }

  /**
   * A job an enqueue handed to this worker, leased to it as a claim would have. Taken once this process's enqueues
   * in flight have settled, unless the worker stopped listening meanwhile: then it is not held, and the shutdown's
   * hand-back of jobs handed late finds it. Dropped when a hand-back of unreceived jobs, which found it leased and
   * not held, handed it back before this notice came: it is queued again, and runs once claimed under a new lease.
   */
  #receive(row: JobRow, slotsLeft: number): void {
    if (!this.listening) return;
    if (this.#deps.handedBack(row)) return;
    this.#deps.onHandedOff();
    const receivedAt = this.#deps.clock.now();
    const enqueued = this.#deps.enqueuesSettled?.();
    if (!enqueued) {
      this.#deps.take(row, slotsLeft, receivedAt);
      return;
    }
    this.#waiting.set(row.id, row);
    void enqueued.then(() => {
      // Stopped meanwhile: `stop` emptied the set, and the job is left to the shutdown's hand-back.
      if (this.#waiting.delete(row.id) && this.listening) this.#deps.take(row, slotsLeft, receivedAt);
    });
  }
}
