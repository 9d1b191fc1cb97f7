import { test, expect } from "@playwright/test";
import { MANAGER, db, demoProgramId, screenshot, signIn } from "./support";

test.afterEach(async ({ page }, testInfo) => {
  await screenshot(page, testInfo);
});

test("a manager orders a batch with a double click, gets one batch, prints it and withdraws it", async ({
  page,
}) => {
  const name = `Mailing ${Date.now()}`;
  await signIn(page, MANAGER);
  await page.getByRole("link", { name: "Batches" }).click();
  await expect(page.getByRole("heading", { name: "Postcard batches" })).toBeVisible();
  const key = await page.locator('input[name="request_key"]').inputValue();

  await page.getByLabel("Name (for you and the mailing house)").fill(name);
  await page.getByLabel("Postcards (1 to 100,000)").fill("6");
  await page.getByRole("button", { name: "Make the codes" }).dblclick();
  await expect(page.getByRole("status")).toContainText(`Made 6 codes for ${name}`);
  const row = page.locator("tr", { hasText: name });
  await expect(row).toHaveCount(1);
  await expect(row.locator("td.num")).toHaveText(["6", "0", "6"]);
  // The next order gets a key of its own.
  await expect(page.locator('input[name="request_key"]')).not.toHaveValue(key);

  const client = await db();
  const program = await demoProgramId(client);
  const { rows } = await client.query(
    `select b.id, (select count(*) from claim_codes c where c.program_id = b.program_id and c.batch_id = b.id)::int as codes
       from claim_code_batches b where b.program_id = $1 and b.name = $2`,
    [program, name],
  );
  expect(rows).toHaveLength(1);
  expect(rows[0].codes).toBe(6);

  // The printed page has a QR code for each postcard.
  await row.getByRole("link", { name: "Print" }).click();
  await expect(page.locator("article.postcard .qr svg")).toHaveCount(6);
  await page.goBack();

  await page.locator("tr", { hasText: name }).getByText("Withdraw…").click();
  await page.getByRole("button", { name: `Withdraw the 6 unclaimed codes of ${name}` }).click();
  await expect(page.getByRole("status")).toContainText(`Withdrew 6 unclaimed codes of ${name}`);
  await expect(page.locator("tr", { hasText: name })).toContainText("6 unclaimed withdrawn on");
  const voided = await client.query(
    "select count(*)::int as n from claim_codes where batch_id = $1 and voided_at is not null",
    [rows[0].id],
  );
  expect(voided.rows[0].n).toBe(6);
  await client.end();
});
