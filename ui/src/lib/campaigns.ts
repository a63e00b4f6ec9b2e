// Campaigns as people read them: states, channels and why a recipient is left out.
import { CHANNELS, words } from './format';
import type { CampaignState } from './api-types/CampaignState';
import type { Channel } from './api-types/Channel';
import type { OutboxState } from './api-types/OutboxState';
import type { Unsendable } from './api-types/Unsendable';

export const CAMPAIGN_STATES: Record<CampaignState, string> = {
  draft: 'Draft',
  submitted: 'Waiting for approval',
  approved: 'Approved',
  rejected: 'Sent back',
  scheduled: 'Scheduled',
  sending: 'Sending',
  paused: 'Paused',
  sent: 'Sent',
  cancelled: 'Cancelled',
};

export const DELIVERY: Record<OutboxState, string> = {
  queued: 'Queued',
  claimed: 'Being sent',
  sent: 'Sent',
  failed: 'Failed',
  indeterminate: 'Not known whether sent',
  not_sent: 'Not sent',
};

export function channelName(channel: Channel): string {
  return CHANNELS.find(([value]) => value === channel)?.[1] ?? words(channel);
}

/** Why an allowed member still cannot be sent the message. */
export function unsendableReason(u: Unsendable): string {
  switch (u.reason) {
    case 'missing_merge_field':
      return `no value for {{${u.field ?? '?'}}}`;
    case 'no_contact_point':
      return 'no address or number on this channel';
    case 'address_bouncing':
      return 'every address bounces';
    default:
      return words(u.reason);
  }
}

/** The channels a campaign sends (the others are logged on the contact). */
export const SENT_CHANNELS: Channel[] = ['email', 'sms'];
