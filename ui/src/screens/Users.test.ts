import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import Users from './Users.svelte';

const JANE = { id: 'u-jane', email: 'jane@example.org', display_name: 'Jane', roles: ['sales'], active: true, created_at: '2026-01-01T00:00:00Z' };

function session(id: string, device: string, revoked: string | null = null) {
  return {
    id,
    user_id: JANE.id,
    device_name: device,
    created_at: '2026-11-20T09:00:00Z',
    last_seen_at: '2026-11-23T16:00:00Z',
    idle_expires_at: '2026-11-24T16:00:00Z',
    absolute_expires_at: '2026-12-20T09:00:00Z',
    revoked_at: revoked,
    current: false,
  };
}

describe('users and devices', () => {
  afterEach(() => {
    cleanup();
    clearMocks();
  });

  it('signs a stolen laptop out of every session in one click', async () => {
    let revoked = false;
    const calls: { cmd: string; args: unknown }[] = [];
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      switch (cmd) {
        case 'list_users':
          return [JANE];
        case 'user_sessions':
          return revoked
            ? [session('s1', 'Laptop 7', '2026-11-24T10:00:00Z'), session('s2', 'Laptop 7', '2026-11-24T10:00:00Z'), session('s3', 'Desk PC')]
            : [session('s1', 'Laptop 7'), session('s2', 'Laptop 7'), session('s3', 'Desk PC')];
        case 'revoke_device':
          revoked = true;
          return { revoked: 2 };
      }
      throw new Error(`unexpected command ${cmd}`);
    });
    render(Users);
    await fireEvent.click(await screen.findByRole('button', { name: 'Sessions' }));
    // One button per device, however many sessions it has.
    await waitFor(() => expect(screen.getAllByRole('button', { name: /^Sign out/ })).toHaveLength(2));
    await fireEvent.click(screen.getByRole('button', { name: 'Sign out “Laptop 7”' }));

    expect((await screen.findByRole('status')).textContent).toContain('Laptop 7: 2 sessions ended');
    expect(calls.find((c) => c.cmd === 'revoke_device')?.args).toEqual({ userId: JANE.id, deviceName: 'Laptop 7' });
    await waitFor(() => expect(screen.getAllByRole('button', { name: /^Sign out/ })).toHaveLength(1));
  });
});
