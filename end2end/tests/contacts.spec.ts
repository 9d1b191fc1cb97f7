import { test, expect } from "@playwright/test";
import { CLERK, db, hydrated, newMember, screenshot, signIn } from "./support";

test.afterEach(async ({ page }, testInfo) => {
  await screenshot(page, testInfo);
});

/// A French mobile number no other test uses: 06 then eight random digits.
function newPhone(): { typed: string; digits: string } {
  const digits = String(Math.floor(Math.random() * 1e8)).padStart(8, "0");
  const typed = `06 ${digits.slice(0, 2)} ${digits.slice(2, 4)} ${digits.slice(4, 6)} ${digits.slice(6)}`;
  return { typed, digits };
}

test("a phone number given on the member page finds the member from the scan box", async ({ page }) => {
  const client = await db();
  const member = await newMember(client, 12);
  const phone = newPhone();
  await signIn(page, CLERK);

  await page.goto(`/member/${member}`);
  await hydrated(page);
  await page.getByText("Phone and email").click();
  await page.getByLabel("Phone number or email").fill(phone.typed);
  await page.getByRole("button", { name: "Save" }).click();
  const kept = page.locator('li[data-contact="phone"] .hint');
  await expect(kept).toHaveText(`... ${phone.digits.slice(4)}`);
  // The database keeps the hint and a digest, never the number.
  const { rows } = await client.query(
    `select c.hint, c::text as row from member_contacts c
       join passes_master m on m.program_id = c.program_id and m.id = c.pass_id where m.external_id = $1`,
    [member],
  );
  expect(rows).toHaveLength(1);
  expect(rows[0].row).not.toContain(phone.digits);

  // Typed into the scan box, however it is grouped.
  await page.goto("/");
  await hydrated(page);
  const input = page.getByLabel("Code");
  await input.fill(`+336${phone.digits}`);
  await input.press("Enter");
  await expect(page).toHaveURL(new RegExp(`/member/${member}$`));
  await expect(page.locator(".balance-value")).toHaveText("12");

  // A number nobody has is said so, in words.
  await page.goto("/");
  await hydrated(page);
  const other = newPhone();
  await page.getByLabel("Code").fill(other.typed);
  await page.getByLabel("Code").press("Enter");
  await expect(page.getByRole("status")).toContainText(
    "No member of this program has this phone number or email.",
  );
  await client.end();
});

test("a customer enrolled with an email is found by it, and the email cannot go on a second pass", async ({
  page,
}) => {
  const client = await db();
  const email = `guest-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
  await signIn(page, CLERK);

  await page.goto("/enrol");
  await hydrated(page);
  await page.getByLabel("Phone number or email (optional)").fill(email.toUpperCase());
  await page.getByRole("button", { name: "Create member pass" }).click();
  await expect(page).toHaveURL(/\/member\/MBR-[A-Z0-9]+\?enrolled=1$/);
  const member = page.url().match(/\/member\/(MBR-[A-Z0-9]+)/)![1];
  await expect(page.locator('li[data-contact="email"] .hint')).toHaveText("g...@example.com");

  await page.goto("/enrol");
  await hydrated(page);
  await page.getByLabel("Phone number or email (optional)").fill(email);
  await page.getByRole("button", { name: "Create member pass" }).click();
  await expect(page.getByRole("status")).toContainText("This email is already on another member's pass.");

  await page.goto("/");
  await hydrated(page);
  await page.getByLabel("Code").fill(email);
  await page.getByLabel("Code").press("Enter");
  await expect(page).toHaveURL(new RegExp(`/member/${member}$`));
  await client.end();
});

test("a customer who lost their pass is found by phone and given a new one; the old pass says it was replaced", async ({
  page,
}) => {
  const client = await db();
  const lost = await newMember(client, 33);
  const phone = newPhone();
  await signIn(page, CLERK);
  await page.goto(`/member/${lost}`);
  await hydrated(page);
  await page.getByText("Phone and email").click();
  await page.getByLabel("Phone number or email").fill(phone.typed);
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.locator('li[data-contact="phone"] .hint')).toHaveText(`... ${phone.digits.slice(4)}`);

  // At the counter, without the pass: found by the number, then a new pass.
  await page.goto("/");
  await hydrated(page);
  await page.getByLabel("Code").fill(phone.typed);
  await page.getByLabel("Code").press("Enter");
  await expect(page).toHaveURL(new RegExp(`/member/${lost}$`));
  await hydrated(page);
  await page.getByText("Replace a lost pass").click();
  await page.getByRole("button", { name: "Issue a new pass" }).click();
  await expect(page).toHaveURL(new RegExp(`/member/MBR-[A-Z0-9]+\\?replaces=${lost}$`));
  const fresh = page.url().match(/\/member\/(MBR-[A-Z0-9]+)/)![1];
  await expect(page.locator(".member > .result")).toContainText(`New pass: it replaces ${lost}`);
  await expect(page.locator(".balance-value")).toHaveText("33");
  await expect(page.getByText(`Phone and email: ... ${phone.digits.slice(4)}`)).toBeVisible();

  // The old pass, scanned, says so; its page names the new one.
  await page.goto("/");
  await hydrated(page);
  await page.getByLabel("Code").fill(lost);
  await page.getByLabel("Code").press("Enter");
  await expect(page.getByRole("status")).toContainText("This pass was replaced on");
  await page.goto(`/member/${lost}`);
  await expect(page.locator(".replaced")).toContainText(`The member's pass is now ${fresh}.`);
  await expect(page.locator(".balance-value")).toHaveText("0");
  const { rows } = await client.query(
    `select t.type, t.points from transactions t join passes_master m on m.program_id = t.program_id and m.id = t.member_id
      where m.external_id = $1 order by t.id`,
    [fresh],
  );
  expect(rows).toEqual([{ type: "EARN", points: 33 }]);
  await client.end();
});
