/**
 * The shell blocks of a README section, as test/cli/readme.test.ts runs them. Pure: text in, blocks out.
 *
 * A block is a fenced code block whose info string is `sh`. A block is left out when the line just
 * before its fence (blank lines aside) is the marker `<!-- readme-test: skip ... -->`: an HTML comment,
 * invisible on GitHub, that says in the README's own source why the block does not run (it installs
 * the package from a registry, say).
 */

/** The marker that keeps the next `sh` block out of the README test; text may follow "skip". */
export const SKIP_MARKER = /^<!--\s*readme-test:\s*skip\b.*-->$/;

export interface ShellBlock {
  /** The block's text, without its fences. */
  code: string;
  /** 1-based line of the opening fence in the whole document, for failure messages. */
  line: number;
}

export class ReadmeSectionError extends Error {
  override name = "ReadmeSectionError";
}

/**
 * The `sh` blocks under the level-2 heading `## <heading>`, up to the next level-2 heading, in order,
 * without those marked to skip. Throws ReadmeSectionError when the heading is missing or a fence is
 * left open, since either would make the test pass while running nothing.
 */
export function sectionShellBlocks(markdown: string, heading: string): ShellBlock[] {
  const lines = markdown.split("\n");
  const start = lines.findIndex((l) => l.trimEnd() === `## ${heading}`);
  if (start < 0) throw new ReadmeSectionError(`no "## ${heading}" heading`);
  const blocks: ShellBlock[] = [];
  let previous = "";
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const fence = line.match(/^(`{3,})(.*)$/);
    if (!fence) {
      if (line.startsWith("## ")) break;
      if (line.trim() !== "") previous = line.trim();
      continue;
    }
    const close = lines.findIndex((l, j) => j > i && l.trimEnd() === fence[1]);
    if (close < 0) throw new ReadmeSectionError(`the code block at line ${i + 1} is never closed`);
    if (fence[2]?.trim() === "sh" && !SKIP_MARKER.test(previous)) {
      blocks.push({ code: lines.slice(i + 1, close).join("\n"), line: i + 1 });
    }
    i = close;
    previous = "";
  }
  return blocks;
}
