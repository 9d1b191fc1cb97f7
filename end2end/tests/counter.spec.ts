import { test, expect } from "@playwright/test";
import {
  CLERK,
  balance,
  db,
  hydrated,
  newMember,
  newPostcard,
  newReward,
  screenshot,
  signIn,
  takenElsewhere,
} from "./support";

test.afterEach(async ({ page }, testInfo) => {
  await screenshot(page, testInfo);
});

test("a postcard is claimed once; scanned again it says when", async ({ page }) => {
  const client = await db();
  const code = await newPostcard(client);
  await signIn(page, CLERK);

  const input = page.getByLabel("Code");
  await expect(input).toBeFocused();
  await input.fill(code.toLowerCase());
  await input.press("Enter");
  const status = page.getByRole("status");
  await expect(status).toContainText("New member created from a postcard");
  const pass = (await status.locator(".pass-id").textContent())!.trim();
  expect(pass).toMatch(/^CLM-/);
  await expect(input).toBeFocused();
  await expect(input).toHaveValue("");

  await input.fill(code);
  await input.press("Enter");
  // The day on the program's clock, as the database reckons it.
  const { rows } = await client.query(
    `select to_char(c.claimed_at at time zone p.time_zone, 'FMDD Mon YYYY') as day
       from claim_codes c join programs p on p.id = c.program_id where c.code = $1`,
    [code],
  );
  const day = rows[0].day;
  await expect(status).toContainText(`This postcard has already been claimed on ${day}.`);
  const passes = await client.query(
    "select count(*)::int as n from claim_codes c join passes_master m on m.id = c.pass_id where c.code = $1",
    [code],
  );
  expect(passes.rows[0].n).toBe(1);
  await client.end();
});

test("scanning a member pass opens the point of sale; redeeming too much says the balance", async ({ page }) => {
  const client = await db();
  const member = await newMember(client, 41);
  const reward = await newReward(client, "Sandwich", 41);
  await signIn(page, CLERK);

  await page.getByLabel("Code").fill(member);
  await page.getByLabel("Code").press("Enter");
  await expect(page).toHaveURL(new RegExp(`/member/${member}$`));
  await expect(page.locator(".balance-value")).toHaveText("41");
  await hydrated(page);

  // Another till takes a point after this page showed the balance: the reward now costs more than it.
  await takenElsewhere(client, member, 1);
  await page.getByRole("button", { name: `${reward} · 41 points` }).click();
  await expect(page.getByRole("status")).toContainText("Not enough points: the balance is 40 points.");
  expect(await balance(client, member)).toBe(40);
  const { rows } = await client.query(
    "select count(*)::int as n from ledger_details d join rewards r on r.id = d.reward_id where r.name = $1",
    [reward],
  );
  expect(rows[0].n).toBe(0);
  // The page reads the balance again, and a reward over it cannot be pressed.
  await expect(page.locator(".balance-value")).toHaveText("40");
  await expect(page.getByRole("button", { name: `${reward} · 41 points` })).toBeDisabled();
  await client.end();
});

test("two pages redeeming the whole balance at once: exactly one succeeds", async ({ browser }) => {
  const client = await db();
  const member = await newMember(client, 100);
  const reward = await newReward(client, "Hamper", 100);
  const pages = await Promise.all([browser.newPage(), browser.newPage()]);
  for (const page of pages) {
    await signIn(page, CLERK);
    await page.goto(`/member/${member}`);
    await hydrated(page);
    await expect(page.getByRole("button", { name: `${reward} · 100 points` })).toBeEnabled();
  }
  await Promise.all(pages.map((page) => page.getByRole("button", { name: `${reward} · 100 points` }).click()));
  const outcomes = await Promise.all(
    pages.map(async (page) => {
      const status = page.getByRole("status");
      await expect(status).toContainText(/New balance: 0 points|Not enough points/);
      return (await status.textContent()) ?? "";
    }),
  );
  expect(outcomes.filter((text) => text.includes(`Redeemed 100 points for ${reward}.`)).length).toBe(1);
  expect(outcomes.filter((text) => text.includes("Not enough points: the balance is 0 points.")).length).toBe(1);
  expect(await balance(client, member)).toBe(0);
  const ledger = await client.query(
    "select count(*)::int as n from transactions t join passes_master m on m.id = t.member_id where m.external_id = $1 and t.type = 'REDEEM'",
    [member],
  );
  expect(ledger.rows[0].n).toBe(1);
  for (const page of pages) await page.close();
  await client.end();
});

test("a double-clicked Record the sale applies once", async ({ page }) => {
  const client = await db();
  const member = await newMember(client, 10);
  await signIn(page, CLERK);
  await page.goto(`/member/${member}`);
  await hydrated(page);
  await page.getByLabel("Sale amount (EUR)").fill("25");
  await page.getByRole("button", { name: "Record the sale" }).dblclick();
  await expect(page.getByRole("status")).toContainText("Earned 25 points (25.00 EUR -> 25 points");
  await expect(page.getByRole("status")).toContainText("New balance: 35 points");
  await expect(page.locator(".balance-value")).toHaveText("35");
  expect(await balance(client, member)).toBe(35);
  const ledger = await client.query(
    "select count(*)::int as n from transactions t join passes_master m on m.id = t.member_id where m.external_id = $1 and t.type = 'EARN'",
    [member],
  );
  // The opening balance, and the sale once.
  expect(ledger.rows[0].n).toBe(2);
  await client.end();
});

test("a sale whose answer is lost says the server cannot be reached, and the second press applies once", async ({
  page,
}) => {
  const client = await db();
  const member = await newMember(client, 10);
  await signIn(page, CLERK);
  await page.goto(`/member/${member}`);
  await hydrated(page);
  // The sale reaches the server, but the connection drops before its answer comes back.
  await page.route("**/api/earn_sale", async (route) => {
    await route.fetch();
    await route.abort("connectionreset");
  });
  await page.getByLabel("Sale amount (EUR)").fill("25");
  await page.getByRole("button", { name: "Record the sale" }).click();
  const status = page.getByRole("status");
  await expect(status).toContainText("The server cannot be reached.");
  await expect(status).toContainText("It may or may not have gone through.");
  await expect(page.getByRole("button", { name: "Record the sale" })).toBeEnabled();
  expect(await balance(client, member)).toBe(35);

  await page.unroute("**/api/earn_sale");
  await page.getByRole("button", { name: "Record the sale" }).click();
  await expect(status).toContainText("New balance: 35 points (already recorded; not applied again).");
  await expect(page.locator(".balance-value")).toHaveText("35");
  expect(await balance(client, member)).toBe(35);
  await client.end();
});

test("enrolling at the counter creates an MBR- member", async ({ page }) => {
  await signIn(page, CLERK);
  await page.getByRole("link", { name: "Enrol" }).click();
  await page.getByRole("button", { name: "Create member pass" }).click();
  await expect(page).toHaveURL(/\/member\/MBR-[A-Z0-9]+\?enrolled=1$/);
  await expect(page.getByRole("status")).toContainText("New member enrolled");
  await expect(page.locator(".balance-value")).toHaveText("0");
});

test("staff cannot see another program's member, even by typing its URL", async ({ page }) => {
  const client = await db();
  const { rows } = await client.query("insert into programs (name) values ('Rival Bakery') returning id");
  const theirs = await newMember(client, 70, rows[0].id);
  await signIn(page, CLERK);
  await page.goto(`/member/${theirs}`);
  await expect(page.getByText("No member with this pass in this program.")).toBeVisible();
  await expect(page.getByText("70")).toHaveCount(0);
  await client.end();
});
