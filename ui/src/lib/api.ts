// The Rust commands, typed. The front end calls nothing else: no fetch, no storage.
import { invoke } from '@tauri-apps/api/core';
import { asCommandError } from './errors';
import { sessionEnded } from './session.svelte';
import type { Company } from './api-types/Company';
import type { CompanyInput } from './api-types/CompanyInput';
import type { CompanyPage } from './api-types/CompanyPage';
import type { ConsentWordingPage } from './api-types/ConsentWordingPage';
import type { Contact } from './api-types/Contact';
import type { ContactInput } from './api-types/ContactInput';
import type { ContactPage } from './api-types/ContactPage';
import type { DecisionRequest } from './api-types/DecisionRequest';
import type { DecisionResponse } from './api-types/DecisionResponse';
import type { FieldChange } from './api-types/FieldChange';
import type { NewLedgerEvent } from './api-types/NewLedgerEvent';
import type { RecordedEvent } from './api-types/RecordedEvent';
import type { NewUser } from './api-types/NewUser';
import type { PolicyChange } from './api-types/PolicyChange';
import type { PolicyVersion } from './api-types/PolicyVersion';
import type { RevokedCount } from './api-types/RevokedCount';
import type { SessionInfo } from './api-types/SessionInfo';
import type { User } from './api-types/User';
import type { UserUpdate } from './api-types/UserUpdate';

export type Connection =
  | { status: 'unknown'; server: string; fingerprint: string }
  | { status: 'trusted'; server: string; fingerprint: string; user: User | null };

/** Calls a command; a session that ended on the server sends the app back to login. */
async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (raw) {
    const error = asCommandError(raw);
    if (error.kind === 'session_ended' || error.kind === 'not_logged_in') sessionEnded(error.message);
    throw error;
  }
}

export const api = {
  knownServers: () => call<string[]>('known_servers'),
  connect: (address: string) => call<Connection>('connect', { address }),
  trust: (address: string, fingerprint: string) => call<Connection>('trust', { address, fingerprint }),
  login: (email: string, password: string, deviceName: string) =>
    call<User>('login', { email, password, deviceName }),
  logout: () => call<void>('logout'),
  listContacts: (q: string, after: string | null, limit = 50) =>
    call<ContactPage>('list_contacts', { q, after, limit }),
  getContact: (id: string) => call<Contact>('get_contact', { id }),
  createContact: (contact: ContactInput) => call<Contact>('create_contact', { contact }),
  updateContact: (id: string, contact: ContactInput) => call<Contact>('update_contact', { id, contact }),
  contactHistory: (id: string) => call<FieldChange[]>('contact_history', { id }),
  contactLedger: (id: string) => call<RecordedEvent[]>('contact_ledger', { id }),
  recordEvent: (id: string, event: NewLedgerEvent) => call<RecordedEvent>('record_event', { id, event }),
  listConsentWordings: (q: string, before: number | null, limit = 50) =>
    call<ConsentWordingPage>('list_consent_wordings', { q, before, limit }),
  decide: (request: DecisionRequest) => call<DecisionResponse>('decide', { request }),
  listCompanies: (q: string, after: string | null, limit = 50) =>
    call<CompanyPage>('list_companies', { q, after, limit }),
  createCompany: (company: CompanyInput) => call<Company>('create_company', { company }),
  updateCompany: (id: string, company: CompanyInput) => call<Company>('update_company', { id, company }),
  listUsers: () => call<User[]>('list_users'),
  createUser: (user: NewUser) => call<User>('create_user', { user }),
  updateUser: (id: string, update: UserUpdate) => call<User>('update_user', { id, update }),
  userSessions: (id: string) => call<SessionInfo[]>('user_sessions', { id }),
  revokeSession: (id: string) => call<void>('revoke_session', { id }),
  revokeDevice: (userId: string, deviceName: string | null) =>
    call<RevokedCount>('revoke_device', { userId, deviceName }),
  getPolicy: () => call<PolicyVersion>('get_policy'),
  policyHistory: () => call<PolicyVersion[]>('policy_history'),
  updatePolicy: (change: PolicyChange) => call<PolicyVersion>('update_policy', { change }),
  openEvidencePack: (id: string) => call<void>('open_evidence_pack', { id }),
};
