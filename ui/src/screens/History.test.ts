import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, render, screen } from '@testing-library/svelte';
import History from './History.svelte';

const change = (version: number, field: string, old_value: string | null, new_value: string | null) => ({
  version,
  field,
  old_value,
  new_value,
  changed_by: { kind: 'staff' as const, id: 'u' },
  changed_at: `2026-11-2${version}T10:00:00Z`,
});

describe("a contact's history", () => {
  afterEach(() => cleanup());

  it('lists every changed field, newest first, with what it was and what it became, labelled as the form labels it', () => {
    render(History, { changes: [change(2, 'last_name', 'Doe', 'Smith'), change(3, 'job_title', null, 'Buyer'), change(3, 'some_new_field', null, 'x')] });
    const rows = screen.getAllByRole('row').slice(1).map((r) => r.textContent);
    expect(rows).toHaveLength(3);
    expect(rows[0]).toContain('Job title');
    expect(rows[0]).toContain('—');
    expect(rows[0]).toContain('Buyer');
    expect(rows[1]).toContain('some new field');
    expect(rows[2]).toContain('Last name');
    expect(rows[2]).toContain('DoeSmith');
  });

  it('says so when nothing changed', () => {
    render(History, { changes: [] });
    expect(screen.getByText('Not changed since it was created.')).toBeTruthy();
  });
});
