import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, render, screen } from '@testing-library/svelte';
import Timeline from './Timeline.svelte';
import type { RecordedEvent } from '../lib/api-types/RecordedEvent';
import type { EventKind } from '../lib/api-types/EventKind';

const recorded = (
  seq: number,
  event: EventKind,
  via: RecordedEvent['recorded_via'],
  name: string | null,
): RecordedEvent => ({
  id: `event-${seq}`,
  contact_id: 'contact',
  seq,
  external_id: null,
  at: `2026-11-0${seq}T09:00:00Z`,
  recorded_at: `2026-11-0${seq}T09:05:00Z`,
  recorded_by: name ? 'user-id' : null,
  recorded_by_name: name,
  recorded_via: via,
  event,
  wording_version: event.type === 'consent_given' ? 2 : null,
  source: null,
});

describe('the consent ledger timeline', () => {
  afterEach(() => cleanup());

  it('shows what happened, how, when, the wording and who recorded it, newest first, the evidence marked', () => {
    const consent: EventKind = {
      type: 'consent_given',
      channel: 'email',
      topic: 'boilers',
      method: 'paper_form',
      wording: 'Email me about boilers.',
      third_parties: [],
    } as EventKind;
    // `events` is also a mount option of Svelte's, so the props are passed as props.
    render(Timeline, {
      props: {
        events: [
          recorded(1, { type: 'sale', topic: 'boilers', refusal_offered: true } as EventKind, 'import', null),
          recorded(2, consent, 'user', 'Sam Patel'),
          recorded(3, { type: 'opt_out', channel: 'sms', topic: '*' } as EventKind, 'data_subject', null),
        ],
        highlighted: ['event-2'],
      },
    });
    const items = screen.getAllByRole('listitem');
    expect(items.map((item) => item.getAttribute('data-event-id'))).toEqual(['event-3', 'event-2', 'event-1']);
    expect(items[0].textContent).toContain('Opted out of sms marketing about everything');
    expect(items[0].textContent).toContain('recorded by the person, through the public pages');
    expect(items[1].textContent).toContain('paper form · recorded by Sam Patel');
    expect(items[1].textContent).toContain('“Email me about boilers.”');
    expect(items[1].textContent).toContain('wording v2');
    expect(items[1].classList.contains('evidence')).toBe(true);
    expect(items[2].textContent).toContain('imported');
    expect(items[2].textContent).toContain('offered a simple way to refuse marketing');
    expect(items.filter((item) => item.classList.contains('evidence'))).toHaveLength(1);
  });
});
