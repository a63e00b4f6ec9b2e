// A searched, paged list from the server (contacts, companies): keyset pages, a search that waits
// for typing to pause, and answers to an older search dropped when a newer one has started.
import { asCommandError, type CommandError } from './errors';

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export class PagedSearch<T> {
  query = $state('');
  items = $state<T[]>([]);
  loading = $state(false);
  error = $state<CommandError | null>(null);
  #next = $state<string | null>(null);
  /** The cursors of the pages before this one, to go back. */
  #previous = $state<(string | null)[]>([]);
  #current: string | null = null;
  #asked = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private fetchPage: (query: string, after: string | null) => Promise<Page<T>>) {}

  get hasNext() {
    return this.#next !== null;
  }

  get hasPrevious() {
    return this.#previous.length > 0;
  }

  async load(after: string | null = this.#current) {
    const ask = ++this.#asked;
    this.loading = true;
    this.error = null;
    try {
      const page = await this.fetchPage(this.query, after);
      if (ask !== this.#asked) return; // a newer search has started
      this.items = page.items;
      this.#next = page.next_cursor;
      this.#current = after;
    } catch (e) {
      if (ask === this.#asked) this.error = asCommandError(e);
    } finally {
      if (ask === this.#asked) this.loading = false;
    }
  }

  /** Searches again from the first page once typing pauses. */
  search() {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#previous = [];
      this.load(null);
    }, 250);
  }

  nextPage() {
    this.#previous = [...this.#previous, this.#current];
    this.load(this.#next);
  }

  previousPage() {
    const back = this.#previous.at(-1) ?? null;
    this.#previous = this.#previous.slice(0, -1);
    this.load(back);
  }
}
