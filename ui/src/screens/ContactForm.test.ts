import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, fireEvent, render, screen } from '@testing-library/svelte';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import ContactForm from './ContactForm.svelte';
import { session } from '../lib/session.svelte';
import type { Contact } from '../lib/api-types/Contact';

const JANE: Contact = {
  id: '01a20af6-0000-7000-8000-000000000001',
  version: 3,
  first_name: 'Jane',
  last_name: 'Doe',
  emails: ['jane@example.com'],
  phones: [],
  address: null,
  company_id: null,
  subscriber_kind: 'individual',
  job_title: null,
  notes: null,
  owner_id: '01a20af6-0000-7000-8000-0000000000aa',
  active: true,
  created_at: '2026-11-20T09:00:00Z',
  created_by: { kind: 'staff', id: '01a20af6-0000-7000-8000-0000000000aa' },
  updated_at: '2026-11-20T09:00:00Z',
  updated_by: { kind: 'staff', id: '01a20af6-0000-7000-8000-0000000000aa' },
};

describe('the contact form', () => {
  afterEach(() => {
    cleanup();
    clearMocks();
  });

  it('shows each refused field beside the field and saves nothing', async () => {
    mockIPC((cmd) => {
      if (cmd === 'create_contact')
        throw {
          kind: 'invalid',
          message: 'Some fields are not valid.',
          fields: [
            { field: 'phones[0]', reason: 'is not a phone number' },
            { field: 'address.postcode', reason: 'is not a UK postcode' },
          ],
        };
      throw new Error(`unexpected command ${cmd}`);
    });
    const saved = vi.fn();
    render(ContactForm, { saved, cancel: () => {} });
    await fireEvent.input(screen.getByLabelText(/Phones/), { target: { value: '12' } });
    await fireEvent.input(screen.getByLabelText('Postcode'), { target: { value: 'nowhere' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Save' }));

    expect(await screen.findByText('phones[0]: is not a phone number')).toBeTruthy();
    expect(screen.getByText('is not a UK postcode')).toBeTruthy();
    expect(screen.getByLabelText('Postcode').getAttribute('aria-invalid')).toBe('true');
    expect(saved).not.toHaveBeenCalled();
  });

  it('sends the version it was loaded at and explains a conflict with who changed it and when', async () => {
    let sent: unknown;
    session.user = { id: 'someone-else', version: 1, email: 'me@example.org', display_name: 'Me', roles: ['sales'], active: true, created_at: '2026-01-01T00:00:00Z' };
    mockIPC((cmd, args) => {
      if (cmd === 'update_contact') {
        sent = args;
        throw {
          kind: 'conflict',
          message: 'The contact changed since version 3.',
          conflict: { current_version: 4, updated_by: { kind: 'staff', id: JANE.owner_id! }, updated_by_name: 'Sam Patel', updated_at: '2026-11-21T10:30:00Z' },
        };
      }
      throw new Error(`unexpected command ${cmd}`);
    });
    render(ContactForm, { contact: JANE, saved: () => {}, cancel: () => {} });
    await fireEvent.input(screen.getByLabelText('Last name'), { target: { value: 'Smith' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Save' }));

    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('changed by Sam Patel at 21 Nov 2026');
    expect(screen.getByRole('button', { name: 'Reload' })).toBeTruthy();
    expect(sent).toMatchObject({ id: JANE.id, contact: { version: 3, last_name: 'Smith', emails: ['jane@example.com'] } });
  });
});
