/**
 * The embedded chain's journal on its own (src/chain/journal.ts): how damage is found (scanJournal, pure),
 * what opening a damaged journal does, and what `repairJournal` keeps. Journal damage used to be fixed
 * only by editing the file by hand, and a journal cut in the middle silently started an empty registry.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  entryLine,
  Journal,
  JournalDamagedError,
  type JournalEntry,
  JournalError,
  type JournalHeader,
  repairJournal,
  scanJournal,
} from "../../src/chain/journal.ts";

const root = mkdtempSync(join(tmpdir(), "ledgermind-journal-"));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, `d${dirs++}`);

const header: JournalHeader = {
  format: "ledgermind.chain-journal/1",
  chainId: 31337,
  hardfork: "prague",
  genesisTimestamp: 1_800_000_000,
};
const entries: JournalEntry[] = Array.from({ length: 6 }, (_, i) => ({
  method: "eth_sendRawTransaction",
  params: [`0x02f8${(i + 1).toString(16).padStart(4, "0")}`],
  timestamp: 1_800_000_001 + i,
}));
const headerLine = `${JSON.stringify(header)}\n`;
const sound = headerLine + entries.map(entryLine).join("");

function journalIn(text: string): string {
  const dir = freshDir();
  Journal.open(dir, header).close();
  writeFileSync(join(dir, "journal.ndjson"), text);
  return dir;
}

/** `sound` with line `n` (1-based) replaced. */
function withLine(n: number, line: string): string {
  const lines = sound.split("\n");
  lines[n - 1] = line;
  return lines.join("\n");
}

describe("scanJournal", () => {
  it("reads a sound journal whole", () => {
    const scan = scanJournal(sound);
    assert.deepEqual(scan.header, header);
    assert.deepEqual(scan.entries, entries);
    assert.equal(scan.damage, undefined);
    assert.equal(scan.goodBytes, Buffer.byteLength(sound));
    assert.equal(scan.missingNewline, false);
  });

  it("stops at a line cut mid-entry, keeping every entry before it", () => {
    const cut = sound.slice(0, sound.length - 30);
    const scan = scanJournal(cut);
    assert.deepEqual(scan.entries, entries.slice(0, 5));
    assert.deepEqual(scan.damage, { line: 7, reason: "not JSON: cut or overwritten" });
    assert.equal(scan.lines, 7);
    assert.equal(cut.slice(0, scan.goodBytes), headerLine + entries.slice(0, 5).map(entryLine).join(""));
  });

  it("finds a corrupt line that is still valid JSON by its checksum", () => {
    const flipped = entryLine(entries[2] as JournalEntry)
      .replace("0x02f8", "0x02f9")
      .trimEnd();
    const scan = scanJournal(withLine(4, flipped));
    assert.deepEqual(scan.damage, { line: 4, reason: "checksum mismatch" });
    assert.deepEqual(scan.entries, entries.slice(0, 2));
  });

  it("refuses a line that is JSON but no journal entry", () => {
    assert.deepEqual(scanJournal(withLine(3, '{"method":"eth_call","params":[],"timestamp":1}')).damage, {
      line: 3,
      reason: "not a journal entry",
    });
  });

  it("accepts entries written before entries had checksums", () => {
    const legacy = headerLine + entries.map((e) => `${JSON.stringify(e)}\n`).join("");
    assert.deepEqual(scanJournal(legacy).entries, entries);
    assert.equal(scanJournal(legacy).damage, undefined);
  });

  it("takes a complete last line without its newline as good", () => {
    const scan = scanJournal(sound.slice(0, -1));
    assert.equal(scan.damage, undefined);
    assert.equal(scan.entries.length, 6);
    assert.equal(scan.missingNewline, true);
    assert.equal(scan.goodBytes, Buffer.byteLength(sound) - 1);
  });

  it("reports a damaged header, and still reads the entries after it", () => {
    const scan = scanJournal(withLine(1, '{"format":"ledgermind.chain-jou'));
    assert.equal(scan.header, undefined);
    assert.deepEqual(scan.entries, entries);
  });
});

describe("Journal.open on a damaged journal", () => {
  it("recovers a torn last line: keeps every entry before it and the damaged file aside", () => {
    const torn = `${sound}{"method":"eth_sendRawTransaction","par`;
    const dir = journalIn(torn);
    const journal = Journal.open(dir, header, new Date("2026-12-06T19:00:00.000Z"));
    journal.close();
    assert.deepEqual(journal.entries, entries);
    const backup = join(dir, "journal.damaged-2026-12-06T19-00-00-000Z.ndjson");
    assert.deepEqual(journal.recovery, { line: 8, reason: "not JSON: cut or overwritten", kept: 6, backup });
    assert.equal(readFileSync(backup, "utf8"), torn);
    assert.equal(readFileSync(journal.file, "utf8"), sound);
  });

  it("recovers a corrupt last line the same way", () => {
    const dir = journalIn(withLine(7, "\0\0\0\0\0\0"));
    const journal = Journal.open(dir, header);
    journal.close();
    assert.equal(journal.recovery?.kept, 5);
    assert.deepEqual(journal.entries, entries.slice(0, 5));
  });

  it("refuses damage before the last line, naming `ledgermind chain repair`, and changes nothing", () => {
    const damaged = withLine(3, "#garbage");
    const dir = journalIn(damaged);
    assert.throws(
      () => Journal.open(dir, header),
      (err: unknown) => {
        assert.ok(err instanceof JournalDamagedError);
        assert.match(err.message, /line 3 of 7 \(not JSON.*`ledgermind chain repair` to keep the 1 entries/);
        return true;
      },
    );
    assert.equal(readFileSync(join(dir, "journal.ndjson"), "utf8"), damaged);
  });

  it("appends after a recovered tail on a line of its own", () => {
    const dir = journalIn(`${sound}{"method":"eth_send`);
    const journal = Journal.open(dir, header);
    const next = { method: "evm_mine", params: [], timestamp: 1_900_000_000 };
    journal.append(next);
    journal.close();
    assert.deepEqual(scanJournal(readFileSync(journal.file, "utf8")).entries, [...entries, next]);
  });

  it("starts an empty journal file afresh: its creation was cut short before any entry", () => {
    const dir = journalIn("");
    const journal = Journal.open(dir, header);
    journal.close();
    assert.deepEqual(journal.entries, []);
    assert.equal(readFileSync(journal.file, "utf8"), headerLine);
  });
});

describe("repairJournal (`ledgermind chain repair`)", () => {
  it("cuts a journal with a corrupt middle line back to the entries before it, with a backup", () => {
    const damaged = withLine(4, "#garbage");
    const dir = journalIn(damaged);
    const r = repairJournal(dir, header, new Date("2026-12-06T19:30:00.000Z"));
    const backup = join(dir, "journal.damaged-2026-12-06T19-30-00-000Z.ndjson");
    assert.deepEqual(r, {
      file: join(dir, "journal.ndjson"),
      kept: 2,
      dropped: 4,
      damage: { line: 4, reason: "not JSON: cut or overwritten" },
      headerRebuilt: false,
      backup,
    });
    assert.equal(readFileSync(backup, "utf8"), damaged);
    const journal = Journal.open(dir, header);
    journal.close();
    assert.deepEqual(journal.entries, entries.slice(0, 2));
    assert.equal(journal.recovery, undefined);
  });

  it("rebuilds a damaged header with its genesis just before the first entry", () => {
    const dir = journalIn(withLine(1, "garbage"));
    const r = repairJournal(dir, { ...header, genesisTimestamp: 2_000_000_000 });
    assert.equal(r.headerRebuilt, true);
    assert.equal(r.kept, 6);
    const journal = Journal.open(dir, header);
    journal.close();
    assert.equal(journal.header.genesisTimestamp, (entries[0] as JournalEntry).timestamp - 1);
    assert.deepEqual(journal.entries, entries);
  });

  it("leaves a sound journal alone", () => {
    const dir = journalIn(sound);
    assert.deepEqual(repairJournal(dir, header), {
      file: join(dir, "journal.ndjson"),
      kept: 6,
      dropped: 0,
      headerRebuilt: false,
    });
    assert.equal(readFileSync(join(dir, "journal.ndjson"), "utf8"), sound);
  });

  it("says there is nothing to repair where there is no journal", () => {
    const dir = freshDir();
    assert.throws(() => repairJournal(dir, header), JournalError);
    assert.equal(existsSync(dir), false);
  });
});
