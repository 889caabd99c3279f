/** One open tunnel (CONNECT or WebSocket) as the operator sees it. */
export interface TrackedTunnel {
  readonly id: number;
  readonly agent: string;
  readonly fleet: string | null;
  readonly tier: string | null;
  readonly kind: "connect" | "upgrade";
  readonly host: string;
  readonly port: number;
  readonly openedAt: number;
}

interface Entry extends TrackedTunnel {
  close(): void;
}

/**
 * Open tunnels per agent: the limit on concurrent tunnels is enforced here, and a lockdown can
 * close the tunnels already open (`closeWhere`) instead of waiting for them to end.
 */
export class ConnectionTracker {
  private readonly entries = new Map<number, Entry>();
  private readonly perAgent = new Map<string, number>();
  private nextId = 1;

  count(agent: string): number {
    return this.perAgent.get(agent) ?? 0;
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * Register a tunnel if the agent is under `limit`; returns a release function (idempotent)
   * or null when the agent already has `limit` tunnels open.
   */
  tryAdd(tunnel: Omit<TrackedTunnel, "id">, limit: number, close: () => void): (() => void) | null {
    const n = this.count(tunnel.agent);
    if (n >= limit) return null;
    const id = this.nextId++;
    this.entries.set(id, { ...tunnel, id, close });
    this.perAgent.set(tunnel.agent, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.entries.delete(id);
      const left = this.count(tunnel.agent) - 1;
      if (left > 0) this.perAgent.set(tunnel.agent, left);
      else this.perAgent.delete(tunnel.agent);
    };
  }

  list(): TrackedTunnel[] {
    return [...this.entries.values()].map(({ close: _close, ...t }) => t);
  }

  /** Close every tunnel matching `pred`; returns how many were closed. */
  closeWhere(pred: (t: TrackedTunnel) => boolean): number {
    const victims = [...this.entries.values()].filter((e) => pred(e));
    for (const v of victims) v.close();
    return victims.length;
  }
}
