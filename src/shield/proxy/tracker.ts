/** One open connection through the shield as the operator sees it. */
export interface TrackedConnection {
  readonly id: number;
  readonly agent: string;
  readonly fleet: string | null;
  readonly tier: string | null;
  /** A CONNECT or WebSocket tunnel, or a plain HTTP exchange still in flight. */
  readonly kind: "connect" | "upgrade" | "http";
  readonly host: string;
  readonly port: number;
  readonly openedAt: number;
}

interface Entry extends TrackedConnection {
  close(): void;
}

/**
 * What is open through the shield, per agent. The limit on concurrent tunnels is enforced here,
 * and a lockdown can cut what is already open (`closeWhere`) instead of waiting for a long
 * download or an idle tunnel to end on its own.
 */
export class ConnectionTracker {
  private readonly entries = new Map<number, Entry>();
  /** Tunnels only: in-flight HTTP exchanges do not count against the tunnel limit. */
  private readonly tunnelsPerAgent = new Map<string, number>();
  private nextId = 1;

  /** Open tunnels (CONNECT and WebSocket) of `agent`. */
  count(agent: string): number {
    return this.tunnelsPerAgent.get(agent) ?? 0;
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * Register a tunnel if the agent has fewer than `limit` open; returns an idempotent release
   * function, or null when the agent is at its limit.
   */
  tryAdd(conn: Omit<TrackedConnection, "id">, limit: number, close: () => void): (() => void) | null {
    const n = this.count(conn.agent);
    if (n >= limit) return null;
    this.tunnelsPerAgent.set(conn.agent, n + 1);
    const releaseEntry = this.track(conn, close);
    return () => {
      if (!releaseEntry()) return;
      const left = this.count(conn.agent) - 1;
      if (left > 0) this.tunnelsPerAgent.set(conn.agent, left);
      else this.tunnelsPerAgent.delete(conn.agent);
    };
  }

  /** Register an in-flight HTTP exchange (no limit); returns an idempotent release function. */
  add(conn: Omit<TrackedConnection, "id">, close: () => void): () => void {
    const release = this.track(conn, close);
    return () => void release();
  }

  list(): TrackedConnection[] {
    return [...this.entries.values()].map(({ close: _close, ...c }) => c);
  }

  /** Close every connection matching `pred`; returns how many were closed. */
  closeWhere(pred: (c: TrackedConnection) => boolean): number {
    const victims = [...this.entries.values()].filter((e) => pred(e));
    for (const v of victims) v.close();
    return victims.length;
  }

  /** Returns a release function that reports whether this call released the entry. */
  private track(conn: Omit<TrackedConnection, "id">, close: () => void): () => boolean {
    const id = this.nextId++;
    // Spelled out: a spread per request costs more than the rest of the bookkeeping.
    this.entries.set(id, {
      id,
      agent: conn.agent,
      fleet: conn.fleet,
      tier: conn.tier,
      kind: conn.kind,
      host: conn.host,
      port: conn.port,
      openedAt: conn.openedAt,
      close,
    });
    return () => this.entries.delete(id);
  }
}
