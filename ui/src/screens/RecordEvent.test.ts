import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import RecordEvent from './RecordEvent.svelte';

const WORDINGS = {
  items: [
    { id: 'w2', version: 2, text: 'Email me about boilers and boiler cover.', first_used_at: '2026-11-02T09:00:00Z' },
    { id: 'w1', version: 1, text: 'Email me about boilers.', first_used_at: '2026-11-01T09:00:00Z' },
  ],
  next_before: null,
};

describe('recording a consent', () => {
  afterEach(() => {
    cleanup();
    clearMocks();
  });

  it('cites a recorded wording exactly, or takes a new one typed in', async () => {
    const sent: Record<string, unknown>[] = [];
    mockIPC((cmd, args) => {
      if (cmd === 'list_consent_wordings') return WORDINGS;
      if (cmd === 'record_event') {
        sent.push((args as { event: Record<string, unknown> }).event);
        return {};
      }
      throw new Error(`unexpected command ${cmd}`);
    });
    render(RecordEvent, { contactId: 'contact', recorded: () => {} });
    const choice = screen.getByLabelText('Wording') as HTMLSelectElement;
    await waitFor(() => expect(choice.options).toHaveLength(3));
    const text = screen.getByLabelText('The exact wording the person agreed to') as HTMLTextAreaElement;
    expect(text.readOnly).toBe(false);

    await fireEvent.change(choice, { target: { value: '1' } });
    expect(text.value).toBe('Email me about boilers.');
    expect(text.readOnly).toBe(true);
    await fireEvent.input(screen.getByLabelText(/^Topic/), { target: { value: 'boilers' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Record' }));
    await waitFor(() => expect(sent).toHaveLength(1));
    expect(sent[0]).toMatchObject({ type: 'consent_given', topic: 'boilers', wording: 'Email me about boilers.' });

    await waitFor(() => expect(choice.value).toBe(''));
    expect(text.readOnly).toBe(false);
    await fireEvent.input(text, { target: { value: 'Text me offers.' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Record' }));
    await waitFor(() => expect(sent).toHaveLength(2));
    expect(sent[1]).toMatchObject({ wording: 'Text me offers.' });
  });

  it('still takes a typed wording when the recorded ones cannot be loaded, and says so', async () => {
    mockIPC((cmd) => {
      if (cmd === 'list_consent_wordings') throw { kind: 'unreachable', message: 'Cannot reach the server.' };
      throw new Error(`unexpected command ${cmd}`);
    });
    render(RecordEvent, { contactId: 'contact', recorded: () => {} });
    expect(await screen.findByText(/The recorded wordings could not be loaded: Cannot reach the server\./)).toBeTruthy();
    const text = screen.getByLabelText('The exact wording the person agreed to') as HTMLTextAreaElement;
    expect(text.readOnly).toBe(false);
  });
});
