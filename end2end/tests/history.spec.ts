import { test, expect } from "@playwright/test";
import { readFileSync } from "node:fs";
import { CLERK, MANAGER, balance, db, demoProgramId, hydrated, newMember, screenshot, signIn } from "./support";

test.afterEach(async ({ page }, testInfo) => {
  await screenshot(page, testInfo);
});

/** The id of a member's newest ledger row. */
async function lastTransaction(client: Awaited<ReturnType<typeof db>>, externalId: string): Promise<string> {
  const { rows } = await client.query(
    `select max(t.id)::text as id from transactions t
       join passes_master m on m.program_id = t.program_id and m.id = t.member_id
      where m.external_id = $1`,
    [externalId],
  );
  return rows[0].id;
}

test("a manager filters the history, voids an earn in place and downloads the CSV", async ({ page }) => {
  const client = await db();
  const member = await newMember(client, 50);
  const earned = await lastTransaction(client, member);

  await signIn(page, MANAGER);
  await page.getByRole("link", { name: "History" }).click();
  await expect(page.getByRole("heading", { name: "Transaction history" })).toBeVisible();
  await hydrated(page);

  await page.getByLabel("Member pass").fill(member.toLowerCase());
  await page.getByRole("button", { name: "Show" }).click();
  await expect(page).toHaveURL(new RegExp(`member=${member.toLowerCase()}`));
  const row = page.locator(`#tx-${earned}`);
  await expect(row).toContainText("opening balance");
  await expect(page.locator("table.history-table tbody tr")).toHaveCount(1);

  await row.getByLabel(`Reason for voiding #${earned}`).fill("enrolled twice");
  await row.getByRole("button", { name: `Void #${earned}` }).click();
  await expect(page.getByRole("status")).toContainText(`Transaction #${earned} was voided.`);
  await expect(row).toContainText(/Voided by #\d+/);
  await expect(page.locator("table.history-table tbody tr")).toHaveCount(2);
  await expect(page.getByRole("link", { name: `Void of #${earned}`, exact: true })).toBeVisible();
  expect(await balance(client, member)).toBe(0);

  const download = page.waitForEvent("download");
  await page.getByRole("link", { name: "Download CSV" }).click();
  expect((await download).suggestedFilename()).toBe("history.csv");
  await client.end();
});

test.describe("without JavaScript", () => {
  test.use({ javaScriptEnabled: false });

  test("a void that would take back spent points is refused in words", async ({ page }) => {
    const client = await db();
    const member = await newMember(client, 50);
    const earned = await lastTransaction(client, member);
    await client.query("select public.process_membership_transaction($1, $2, 40, 'REDEEM', 'spent')", [
      await demoProgramId(client),
      member,
    ]);

    await page.goto("/login");
    await page.getByLabel("Email").fill(MANAGER.email);
    await page.getByLabel("Password").fill(MANAGER.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.goto(`/history?member=${member}`);

    const row = page.locator(`#tx-${earned}`);
    await row.getByLabel(`Reason for voiding #${earned}`).fill("wrong member");
    await row.getByRole("button", { name: `Void #${earned}` }).click();
    await expect(page).toHaveURL(/void_error=INSUFFICIENT_FUNDS/);
    await expect(page.getByRole("status")).toContainText("Not enough points: the balance is 10 points.");
    expect(await balance(client, member)).toBe(10);

    const spent = await lastTransaction(client, member);
    await page.locator(`#tx-${spent}`).getByLabel(`Reason for voiding #${spent}`).fill("gift not taken");
    await page.locator(`#tx-${spent}`).getByRole("button", { name: `Void #${spent}` }).click();
    await expect(page.getByRole("status")).toContainText(`Transaction #${spent} was voided.`);
    expect(await balance(client, member)).toBe(50);
    await client.end();
  });
});

/** Splits CSV text into rows of cells, honouring quotes. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        cell += c;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === ",") {
      row.push(cell);
      cell = "";
    } else if (c === "\n") {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
    } else if (c !== "\r") {
      cell += c;
    }
  }
  if (cell !== "" || row.length > 0) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

test("the downloaded CSV of a filter is exactly the database's rows for it", async ({ page }) => {
  const client = await db();
  const member = await newMember(client, 90);
  await client.query("select public.process_membership_transaction($1, $2, 30, 'REDEEM', 'a, quoted \"note\"')", [
    await demoProgramId(client),
    member,
  ]);
  await signIn(page, MANAGER);
  await page.goto("/history?type=REDEEM");
  const download = page.waitForEvent("download");
  await page.getByRole("link", { name: "Download CSV" }).click();
  const file = await (await download).path();
  const lines = parseCsv(readFileSync(file, "utf8"));

  const { rows } = await client.query(
    `select t.id::text, m.external_id, t.type, t.points::text, t.balance_after::text
       from transactions t join passes_master m on m.program_id = t.program_id and m.id = t.member_id
      where t.program_id = $1 and t.type = 'REDEEM'
      order by t.created_at desc, t.id desc`,
    [await demoProgramId(client)],
  );
  expect(lines[0].slice(0, 6)).toEqual(["id", "created_at", "member", "type", "points", "balance_after"]);
  const data = lines.slice(1);
  expect(data.length).toBe(rows.length);
  data.forEach((cells, i) => {
    const row = rows[i];
    expect([cells[0], cells[2], cells[3], cells[4], cells[5]]).toEqual([
      row.id,
      row.external_id,
      row.type,
      row.points,
      row.balance_after,
    ]);
  });
  expect(data.some((cells) => cells.includes('a, quoted "note"'))).toBe(true);
  await client.end();
});

test("a clerk cannot open the history", async ({ page }) => {
  await signIn(page, CLERK);
  await expect(page.getByRole("link", { name: "History" })).toHaveCount(0);
  await page.goto("/history");
  await expect(page.getByText("This page is for managers.")).toBeVisible();
  await expect(page.locator("table.history-table")).toHaveCount(0);
});
