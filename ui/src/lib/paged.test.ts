import { describe, expect, it, vi } from 'vitest';
import { PagedSearch, type Page } from './paged.svelte';

describe('a searched, paged list', () => {
  it('pages forward and back by cursor', async () => {
    const pages: Record<string, Page<number>> = {
      start: { items: [1, 2], next_cursor: 'b' },
      b: { items: [3, 4], next_cursor: 'c' },
      c: { items: [5], next_cursor: null },
    };
    const asked: (string | null)[] = [];
    const list = new PagedSearch<number>(async (_q, after) => {
      asked.push(after);
      return pages[after ?? 'start'];
    });
    await list.load(null);
    expect(list.items).toEqual([1, 2]);
    expect(list.hasPrevious).toBe(false);
    list.nextPage();
    await vi.waitFor(() => expect(list.items).toEqual([3, 4]));
    list.nextPage();
    await vi.waitFor(() => expect(list.items).toEqual([5]));
    expect(list.hasNext).toBe(false);
    list.previousPage();
    await vi.waitFor(() => expect(list.items).toEqual([3, 4]));
    expect(asked).toEqual([null, 'b', 'c', 'b']);
  });

  it('drops the answer to an older search that arrives after a newer one', async () => {
    let release: (page: Page<string>) => void = () => {};
    const list = new PagedSearch<string>((q) =>
      q === 'slow' ? new Promise((resolve) => (release = resolve)) : Promise.resolve({ items: [`found ${q}`], next_cursor: null }),
    );
    list.query = 'slow';
    const older = list.load(null);
    list.query = 'fast';
    await list.load(null);
    release({ items: ['stale'], next_cursor: null });
    await older;
    expect(list.items).toEqual(['found fast']);
    expect(list.loading).toBe(false);
  });
});
