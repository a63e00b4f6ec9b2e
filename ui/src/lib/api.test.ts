import { afterEach, describe, expect, it } from 'vitest';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { api } from './api';
import { session, signedIn } from './session.svelte';

describe('the command wrapper', () => {
  afterEach(() => clearMocks());

  it('sends the app back to login, with the reason, when the server has ended the session', async () => {
    signedIn(
      { server: 'https://crm.example:8443', fingerprint: 'AB' },
      { id: 'u', version: 1, email: 'jane@example.org', display_name: 'Jane', roles: ['sales'], active: true, created_at: '2026-01-01T00:00:00Z' },
    );
    mockIPC(() => {
      throw { kind: 'session_ended', message: 'This session was revoked. Log in again.' };
    });
    await expect(api.listContacts('', null)).rejects.toMatchObject({ kind: 'session_ended' });
    expect(session.user).toBeNull();
    expect(session.notice).toBe('This session was revoked. Log in again.');
    expect(session.connection?.server).toBe('https://crm.example:8443');
  });

  it('leaves the session alone for any other refusal', async () => {
    signedIn(
      { server: 'https://crm.example:8443', fingerprint: 'AB' },
      { id: 'u', version: 1, email: 'jane@example.org', display_name: 'Jane', roles: ['sales'], active: true, created_at: '2026-01-01T00:00:00Z' },
    );
    mockIPC(() => {
      throw { kind: 'forbidden', message: 'You may not.' };
    });
    await expect(api.getContact('x')).rejects.toMatchObject({ kind: 'forbidden' });
    expect(session.user?.email).toBe('jane@example.org');
  });
});
