import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { session } from '../lib/session.svelte';
import CampaignView from './CampaignView.svelte';

const SAM = 'u-sam';
const MIA = 'u-mia';

function user(id: string, roles: string[]) {
  return { id, email: `${id}@example.org`, display_name: id, roles, active: true, created_at: '2026-01-01T00:00:00Z' };
}

function campaign(state: string, version = 3) {
  return {
    id: 'c1',
    version,
    content: {
      name: 'Winter boiler check',
      message: { kind: 'marketing', channel: 'email', topic: 'boilers', third_party: null },
      subject: '{{first_name}}, your boiler before winter',
      body: 'Dear {{first_name}}, ... [Unsubscribe]({{unsubscribe_url}})',
      audience: { search: 'Leeds' },
    },
    content_hash: 'content-hash-read',
    state,
    flags: [],
    author_id: SAM,
    created_at: '2026-12-01T09:00:00Z',
    updated_by: SAM,
    updated_at: '2026-12-01T09:00:00Z',
    submitted_at: '2026-12-01T09:05:00Z',
    decided_by: null,
    decided_at: null,
    rejection_reason: null,
    frozen_members: null,
    audience_hash: null,
  };
}

const PREVIEW = {
  content_hash: 'content-hash-read',
  audience_hash: 'audience-hash-seen',
  decisions: {
    total: 3,
    left_out_inactive: 0,
    allowed: 2,
    denied: 1,
    by_basis: [{ key: 'consent', contacts: 2 }],
    by_reason: [{ key: 'opted_out', contacts: 1 }],
    decisions: [
      { contact_id: 'k1', allowed: true, basis: 'consent', reasons: [], evidence_seqs: [1] },
      { contact_id: 'k2', allowed: true, basis: 'consent', reasons: [], evidence_seqs: [1] },
      { contact_id: 'k3', allowed: false, basis: null, reasons: ['opted_out'], evidence_seqs: [2] },
    ],
    next_cursor: null,
    decided_for: '2026-12-01T10:00:00Z',
    policy_version: 4,
  },
  unsendable: [{ contact_id: 'k2', reason: 'missing_merge_field', field: 'first_name' }],
  unsendable_count: 1,
  sample: { contact_id: 'k1', to: 'grace.li@example.com', subject: 'Grace, your boiler before winter', text: 'Dear Grace, ...', html: '<p>Dear Grace</p>' },
  names: [
    { contact_id: 'k1', first_name: 'Grace', last_name: 'Li' },
    { contact_id: 'k2', first_name: 'Daniel', last_name: 'Hughes' },
    { contact_id: 'k3', first_name: 'Rhys', last_name: 'Morgan' },
  ],
};

describe('a campaign', () => {
  afterEach(() => {
    cleanup();
    clearMocks();
    session.user = null;
  });

  it('is approved by another manager against the content and the audience they were shown', async () => {
    session.user = user(MIA, ['manager']) as never;
    const calls: { cmd: string; args: unknown }[] = [];
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      switch (cmd) {
        case 'get_campaign':
          return campaign('submitted');
        case 'preview_campaign':
          return PREVIEW;
        case 'approve_campaign':
          return { ...campaign('approved', 4), decided_by: MIA, decided_at: '2026-12-01T10:01:00Z', frozen_members: 3 };
      }
      throw new Error(`unexpected command ${cmd}`);
    });
    render(CampaignView, { id: 'c1', back: () => {}, openContact: () => {} });

    // Who is left out, by name and why; the sample as its first recipient gets it.
    const preview = await screen.findByTestId('preview');
    await waitFor(() => expect(preview.textContent).toContain('Rhys Morgan'));
    expect(preview.textContent).toContain('opted out');
    expect(preview.textContent).toContain('Daniel Hughes');
    expect(preview.textContent).toContain('no value for {{first_name}}');
    expect(screen.getByTestId('would-get-it').textContent).toBe('1');
    expect(screen.getByTestId('sample').textContent).toContain('Dear Grace');
    expect(preview.textContent).toContain('As Grace Li would get it');
    // The names come with the preview: no contact is read one by one.
    expect(calls.some((c) => c.cmd === 'get_contact')).toBe(false);

    await fireEvent.click(screen.getByRole('button', { name: 'Approve' }));
    await waitFor(() => expect(screen.getByTestId('campaign-state').textContent).toBe('Approved'));
    expect(calls.find((c) => c.cmd === 'approve_campaign')?.args).toEqual({
      id: 'c1',
      approval: { version: 3, content_hash: 'content-hash-read', audience_hash: 'audience-hash-seen' },
    });
  });

  it('offers its author no approval, only edit while it waits', async () => {
    session.user = user(SAM, ['sales', 'manager']) as never;
    mockIPC((cmd) => {
      if (cmd === 'get_campaign') return campaign('submitted');
      if (cmd === 'preview_campaign') return PREVIEW;
      throw new Error(`unexpected command ${cmd}`);
    });
    render(CampaignView, { id: 'c1', back: () => {}, openContact: () => {} });
    await screen.findByTestId('preview');
    expect(screen.queryByRole('button', { name: 'Approve' })).toBeNull();
    expect(screen.getByRole('button', { name: 'Edit' })).toBeTruthy();
    expect(screen.getByText(/A manager other than you approves it/)).toBeTruthy();
  });

  it('lists the recipients not known to have been sent, and sends again only those chosen', async () => {
    session.user = user(SAM, ['sales']) as never;
    const calls: { cmd: string; args: unknown }[] = [];
    let resent = false;
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      switch (cmd) {
        case 'get_campaign':
          return campaign(resent ? 'sending' : 'sent', resent ? 6 : 5);
        case 'campaign_progress':
          return { state: resent ? 'sending' : 'sent', total: 4, queued: resent ? 1 : 0, in_flight: 0, sent: 2, failed: 0, indeterminate: resent ? 1 : 2, not_sent: 0 };
        case 'indeterminate_recipients':
          return {
            total: 2,
            items: [
              { contact_id: 'k1', first_name: 'Grace', last_name: 'Li', contact_point: 'grace.li@example.com', message_id: 'a.b@x', outcome: 'lease_expired', since: '2026-12-01T10:00:00Z' },
              { contact_id: 'k4', first_name: 'Oliver', last_name: 'Bennett', contact_point: 'oliver.bennett@example.com', message_id: 'a.c@x', outcome: 'lease_expired', since: '2026-12-01T10:00:00Z' },
            ],
          };
        case 'resend_indeterminate':
          resent = true;
          return campaign('sending', 6);
      }
      throw new Error(`unexpected command ${cmd}`);
    });
    render(CampaignView, { id: 'c1', back: () => {}, openContact: () => {} });
    const list = await screen.findByTestId('indeterminate');
    expect(list.textContent).toContain('Grace Li');
    expect(list.textContent).toContain('oliver.bennett@example.com');
    const resend = screen.getByRole('button', { name: 'Send again to 0 chosen' }) as HTMLButtonElement;
    expect(resend.disabled).toBe(true);
    await fireEvent.click(screen.getByRole('checkbox', { name: 'Send again to Oliver Bennett' }));
    await fireEvent.click(screen.getByRole('button', { name: 'Send again to 1 chosen' }));
    await waitFor(() => expect(screen.getByTestId('campaign-state').textContent).toBe('Sending'));
    expect(calls.find((c) => c.cmd === 'resend_indeterminate')?.args).toEqual({
      id: 'c1',
      resend: { version: 5, contact_ids: ['k4'] },
    });
  });
});
