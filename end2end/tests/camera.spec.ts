import { test, expect } from "@playwright/test";
import { resolve } from "node:path";
import { CAMERA_PASS, CAMERA_VIDEO } from "../global-setup";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../chromium";
import { CLERK, db, demoProgramId, screenshot, signIn } from "./support";

// Chromium's fake camera plays a video of a member pass's QR code.
test.use({
  launchOptions: {
    executablePath: CHROMIUM_PATH,
    args: [
      ...CHROMIUM_ARGS,
      "--use-fake-device-for-media-stream",
      "--use-fake-ui-for-media-stream",
      `--use-file-for-fake-video-capture=${resolve(CAMERA_VIDEO)}`,
    ],
  },
});

test.afterEach(async ({ page }, testInfo) => {
  await screenshot(page, testInfo);
});

test("the camera button reads a member pass's QR code and opens the point of sale", async ({ page }) => {
  const client = await db();
  const program = await demoProgramId(client);
  await client.query(
    "insert into passes_master (program_id, external_id) values ($1, $2) on conflict do nothing",
    [program, CAMERA_PASS],
  );
  await client.end();

  await signIn(page, CLERK);
  await page.getByRole("button", { name: "Scan with camera" }).click();
  await expect(page).toHaveURL(new RegExp(`/member/${CAMERA_PASS}$`), { timeout: 20_000 });
  await expect(page.locator(".balance-value")).toHaveText("0");
});
