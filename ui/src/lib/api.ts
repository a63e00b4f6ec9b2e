// The Rust commands, typed. The front end calls nothing else: no fetch, no storage.
import { invoke } from '@tauri-apps/api/core';
import { asCommandError } from './errors';
import { sessionEnded } from './session.svelte';
import type { Campaign } from './api-types/Campaign';
import type { CampaignInput } from './api-types/CampaignInput';
import type { CampaignPage } from './api-types/CampaignPage';
import type { CampaignPreview } from './api-types/CampaignPreview';
import type { CampaignProgress } from './api-types/CampaignProgress';
import type { CampaignState } from './api-types/CampaignState';
import type { CampaignTestSend } from './api-types/CampaignTestSend';
import type { Communication } from './api-types/Communication';
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
import type { IndeterminateRecipients } from './api-types/IndeterminateRecipients';
import type { NewLoggedCommunication } from './api-types/NewLoggedCommunication';
import type { SavedFilter } from './api-types/SavedFilter';
import type { DataRequest } from './api-types/DataRequest';
import type { TopicCatalogue } from './api-types/TopicCatalogue';
import type { NewLedgerEvent } from './api-types/NewLedgerEvent';
import type { RecordedEvent } from './api-types/RecordedEvent';
import type { NewUser } from './api-types/NewUser';
import type { PolicyChange } from './api-types/PolicyChange';
import type { PolicyVersion } from './api-types/PolicyVersion';
import type { RevokedCount } from './api-types/RevokedCount';
import type { SessionInfo } from './api-types/SessionInfo';
import type { User } from './api-types/User';
import type { UserUpdate } from './api-types/UserUpdate';

/** The steps of a campaign's workflow that take only the version they were made against. */
export type CampaignStep = 'submit' | 'send' | 'pause' | 'resume' | 'cancel';

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
  contactCommunications: (id: string) => call<Communication[]>('contact_communications', { id }),
  logCommunication: (id: string, communication: NewLoggedCommunication) =>
    call<Communication>('log_communication', { id, communication }),
  listTopics: () => call<TopicCatalogue>('list_topics'),
  listFilters: () => call<SavedFilter[]>('list_filters'),
  listDataRequests: () => call<DataRequest[]>('list_data_requests'),
  listCampaigns: (state: CampaignState | null) => call<CampaignPage>('list_campaigns', { state }),
  getCampaign: (id: string) => call<Campaign>('get_campaign', { id }),
  createCampaign: (campaign: CampaignInput) => call<Campaign>('create_campaign', { campaign }),
  editCampaign: (id: string, content: CampaignInput, version: number) =>
    call<Campaign>('edit_campaign', { id, edit: { content, version } }),
  previewCampaign: (id: string) => call<CampaignPreview>('preview_campaign', { id }),
  testSendCampaign: (id: string) => call<CampaignTestSend>('test_send_campaign', { id }),
  campaignStep: (id: string, step: CampaignStep, version: number) =>
    call<Campaign>('campaign_step', { id, step, version }),
  approveCampaign: (id: string, version: number, contentHash: string, audienceHash: string) =>
    call<Campaign>('approve_campaign', {
      id,
      approval: { version, content_hash: contentHash, audience_hash: audienceHash },
    }),
  rejectCampaign: (id: string, version: number, reason: string) =>
    call<Campaign>('reject_campaign', { id, rejection: { version, reason } }),
  campaignProgress: (id: string) => call<CampaignProgress>('campaign_progress', { id }),
  indeterminateRecipients: (id: string) => call<IndeterminateRecipients>('indeterminate_recipients', { id }),
  resendIndeterminate: (id: string, version: number, contactIds: string[]) =>
    call<Campaign>('resend_indeterminate', { id, resend: { version, contact_ids: contactIds } }),
};
