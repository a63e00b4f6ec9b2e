// Dates, names and list fields as people read them (British English, the viewer's time zone).
import type { Channel } from './api-types/Channel';

const dateTime = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short' });
const date = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium' });

export function formatDateTime(iso: string): string {
  return dateTime.format(new Date(iso));
}

export function formatDate(iso: string): string {
  return date.format(new Date(iso));
}

export function fullName(c: { first_name: string | null; last_name: string | null }): string {
  return [c.first_name, c.last_name].filter(Boolean).join(' ') || '(no name)';
}

/** "a@x.org, b@y.org" → ["a@x.org", "b@y.org"], blanks dropped. */
export function splitList(text: string): string[] {
  return text
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Blank → null, anything else trimmed. */
export function optional(text: string): string | null {
  const trimmed = text.trim();
  return trimmed.length > 0 ? trimmed : null;
}

/** snake_case words from the API ("soft_opt_in") as plain words ("soft opt in"). */
export function words(code: string): string {
  return code.replaceAll('_', ' ');
}

/** The channels a message goes by, as the forms offer them. */
export const CHANNELS: [Exclude<Channel, 'any'>, string][] = [
  ['email', 'Email'],
  ['sms', 'SMS'],
  ['phone', 'Phone call'],
  ['automated_call', 'Automated call'],
  ['post', 'Post'],
  ['fax', 'Fax'],
];

/** A contact's fields by the server's names (as errors and the history name them), labelled as
 * the contact form labels them. */
export const CONTACT_FIELDS: Record<string, string> = {
  first_name: 'First name',
  last_name: 'Last name',
  emails: 'Emails',
  phones: 'Phones',
  'address.lines': 'Address',
  'address.town': 'Town',
  'address.postcode': 'Postcode',
  'address.country': 'Country',
  company_id: 'Company',
  subscriber_kind: 'Subscriber',
  job_title: 'Job title',
  notes: 'Notes',
  owner_id: 'Owner',
  active: 'Active',
};
