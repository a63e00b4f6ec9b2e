// Where the app stands: connected to which server, logged in as whom, and why it went back to
// the login screen. Held in memory only; nothing here is written anywhere.
import type { User } from './api-types/User';

export interface Connected {
  server: string;
  fingerprint: string;
}

export const session = $state<{
  connection: Connected | null;
  user: User | null;
  /** Why the login screen is showing again (a revoked or expired session). */
  notice: string | null;
}>({ connection: null, user: null, notice: null });

export function signedIn(connection: Connected, user: User) {
  session.connection = connection;
  session.user = user;
  session.notice = null;
}

/** The session ended on the server: back to login, saying why. */
export function sessionEnded(reason: string) {
  session.user = null;
  session.notice = reason;
}

export function disconnect() {
  session.connection = null;
  session.user = null;
}

export function hasRole(...roles: User['roles']): boolean {
  return session.user?.roles.some((r) => roles.includes(r)) ?? false;
}
