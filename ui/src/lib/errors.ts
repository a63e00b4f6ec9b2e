// What a command rejects with (src-tauri/src/error.rs): a kind to branch on, a message for people.
import type { FieldError } from './api-types/FieldError';
import type { StaleVersion } from './api-types/StaleVersion';

export type ErrorKind =
  | 'bad_address'
  | 'not_connected'
  | 'not_logged_in'
  | 'fingerprint_mismatch'
  | 'certificate_changed'
  | 'unreachable'
  | 'timeout'
  | 'session_ended'
  | 'login_failed'
  | 'forbidden'
  | 'not_found'
  | 'invalid'
  | 'conflict'
  | 'server'
  | 'keyring'
  | 'pins'
  | 'webview';

export interface CommandError {
  kind: ErrorKind;
  message: string;
  fields?: FieldError[];
  conflict?: StaleVersion;
  server?: string;
  expected?: string;
  presented?: string;
}

export function isCommandError(value: unknown): value is CommandError {
  return typeof value === 'object' && value !== null && 'kind' in value && 'message' in value;
}

/** Any rejection as a CommandError (a bug in the app becomes a plain message). */
export function asCommandError(value: unknown): CommandError {
  if (isCommandError(value)) return value;
  return { kind: 'server', message: value instanceof Error ? value.message : String(value) };
}

/** The reason given for one field, by its path (`emails[0]`, `address.postcode`). */
export function fieldError(error: CommandError | null, field: string): string | undefined {
  return error?.fields?.find((f) => f.field === field)?.reason;
}

/** The reasons for fields under a prefix not shown beside a field of their own. */
export function otherFieldErrors(error: CommandError | null, shown: string[]): FieldError[] {
  return (error?.fields ?? []).filter((f) => !shown.includes(f.field));
}
