import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import Companies from './Companies.svelte';
import type { Company } from '../lib/api-types/Company';

const company = (version: number, name: string): Company => ({
  id: 'c1',
  version,
  name,
  registration_number: null,
  address: null,
  generic_email: null,
  generic_phone: null,
  owner_id: 'u1',
  active: true,
  created_at: '2026-11-01T09:00:00Z',
  created_by: { kind: 'staff', id: 'u1' },
  updated_at: '2026-11-21T10:30:00Z',
  updated_by: { kind: 'staff', id: 'u2' },
});

describe('companies', () => {
  afterEach(() => {
    cleanup();
    clearMocks();
  });

  it('explains a conflict with who changed the company, and reloads it to edit the new version', async () => {
    let stored = company(1, 'Northfield Heating');
    const sentVersions: (number | null)[] = [];
    mockIPC((cmd, args) => {
      switch (cmd) {
        case 'list_companies':
          return { items: [stored], next_cursor: null };
        case 'update_company': {
          const input = (args as { company: { version: number | null } }).company;
          sentVersions.push(input.version);
          if (input.version !== stored.version)
            throw {
              kind: 'conflict',
              message: 'changed',
              conflict: { current_version: stored.version, updated_by: { kind: 'staff', id: 'u2' }, updated_by_name: 'Sam Patel', updated_at: stored.updated_at },
            };
          return stored;
        }
      }
      throw new Error(`unexpected command ${cmd}`);
    });
    render(Companies);
    await fireEvent.click(await screen.findByRole('button', { name: 'Northfield Heating' }));
    // Someone else saves first.
    stored = company(2, 'Northfield Heating Ltd');
    await fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('changed by Sam Patel at 21 Nov 2026');

    await fireEvent.click(screen.getByRole('button', { name: 'Reload' }));
    await fireEvent.click(await screen.findByRole('button', { name: 'Northfield Heating Ltd' }));
    await fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(sentVersions).toEqual([1, 2]));
    expect(screen.queryByRole('alert')).toBeNull();
  });
});
