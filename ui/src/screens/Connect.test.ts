import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import Connect from './Connect.svelte';
import { disconnect, session } from '../lib/session.svelte';

const FINGERPRINT = 'AB:'.repeat(31) + 'AB';

describe('the connect screen', () => {
  let calls: { cmd: string; args: unknown }[];

  beforeEach(() => {
    calls = [];
    disconnect();
  });
  afterEach(() => {
    cleanup();
    clearMocks();
  });

  it('shows a new server its fingerprint and trusts exactly that one when the user agrees', async () => {
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      switch (cmd) {
        case 'known_servers':
          return [];
        case 'connect':
          return { status: 'unknown', server: 'https://crm.example:8443', fingerprint: FINGERPRINT };
        case 'trust':
          return { status: 'trusted', server: 'https://crm.example:8443', fingerprint: FINGERPRINT, user: null };
      }
      throw new Error(`unexpected command ${cmd}`);
    });
    render(Connect);
    await fireEvent.input(screen.getByLabelText('Server address'), { target: { value: 'crm.example:8443' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Connect' }));

    expect(await screen.findByTestId('fingerprint')).toHaveProperty('textContent', FINGERPRINT);
    expect(session.connection).toBeNull();
    await fireEvent.click(screen.getByRole('button', { name: /They match/ }));

    await waitFor(() => expect(session.connection).toEqual({ server: 'https://crm.example:8443', fingerprint: FINGERPRINT }));
    expect(calls.find((c) => c.cmd === 'connect')?.args).toEqual({ address: 'crm.example:8443' });
    expect(calls.find((c) => c.cmd === 'trust')?.args).toEqual({ address: 'https://crm.example:8443', fingerprint: FINGERPRINT });
  });

  it('refuses a changed certificate with a warning naming both fingerprints, and trusts nothing', async () => {
    const presented = 'CD:'.repeat(31) + 'CD';
    mockIPC((cmd) => {
      if (cmd === 'known_servers') return ['https://crm.example:8443'];
      if (cmd === 'connect')
        throw {
          kind: 'certificate_changed',
          message: 'The certificate has changed.',
          server: 'https://crm.example:8443',
          expected: FINGERPRINT,
          presented,
        };
      throw new Error(`unexpected command ${cmd}`);
    });
    render(Connect);
    // The known server is offered.
    await waitFor(() => expect(screen.getByLabelText<HTMLInputElement>('Server address').value).toBe('https://crm.example:8443'));
    await fireEvent.click(screen.getByRole('button', { name: 'Connect' }));

    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain("The server's certificate has changed");
    expect(screen.getByTestId('expected').textContent).toBe(FINGERPRINT);
    expect(screen.getByTestId('presented').textContent).toBe(presented);
    expect(screen.queryByRole('button', { name: /They match/ })).toBeNull();
    expect(session.connection).toBeNull();
  });

  it('offers a retry when the server cannot be reached', async () => {
    let attempts = 0;
    mockIPC((cmd) => {
      if (cmd === 'known_servers') return [];
      if (cmd === 'connect') {
        attempts += 1;
        throw { kind: 'unreachable', message: 'Cannot reach the server at https://crm.example:8443: Connection refused.' };
      }
      throw new Error(`unexpected command ${cmd}`);
    });
    render(Connect);
    await fireEvent.input(screen.getByLabelText('Server address'), { target: { value: 'crm.example:8443' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Connect' }));
    expect((await screen.findByRole('alert')).textContent).toContain('Connection refused');
    await fireEvent.click(screen.getByRole('button', { name: 'Try again' }));
    await waitFor(() => expect(attempts).toBe(2));
  });
});
