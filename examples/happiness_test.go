// End-to-end tests of the example apps, each on a whole server (real
// embedded NATS, SQLite or PostgreSQL, local Files, the offline vision
// models) with its files applied exactly as they are in this directory.
// Third-party services are local fakes following their documented shapes.
package examples_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"math"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/config"
	"github.com/nagare-iot/nagare/internal/flow"
	"github.com/nagare-iot/nagare/internal/servertest"
)

// ../shared sits beside the repository (see the README).
const shared = "../../shared/"

const (
	lineSecret = "6f8b1c2d3e4f5a6b7c8d9e0f1a2b3c4d"
	lineToken  = "happinessChannelAccessToken0123456789"
	guest      = "U206d25c2ea6bd87c17655609a1c37cb8"
	guest2     = "U9a1c37cb8206d25c2ea6bd87c1765560"
)

// applyFile applies one of the example files as it is.
func applyFile(t *testing.T, ts *servertest.TS, path string) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	coll := "/v1/flux/apps/"
	if bytes.Contains(src, []byte("\npanels:")) {
		coll = "/v1/dashboards/"
	}
	name := strings.TrimSpace(strings.SplitN(strings.SplitN(string(src), "\nname:", 2)[1], "\n", 2)[0])
	if res := ts.Root.Do("PUT", coll+name, string(src), "Content-Type", "application/yaml"); res.Status != 200 && res.Status != 201 {
		t.Fatalf("apply %s: %d %s", path, res.Status, res.Body)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 60s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lineEvent is a webhook body with one image message event.
func lineEvent(eventID, user, messageID, replyToken string, redelivery bool) string {
	return fmt.Sprintf(`{"destination":"U0c4c4c9b4a1e1e2f3a4b5c6d7e8f9a0b","events":[{"type":"message","mode":"active",`+
		`"timestamp":%d,"source":{"type":"user","userId":"%s"},"webhookEventId":"%s","deliveryContext":{"isRedelivery":%t},`+
		`"replyToken":"%s","message":{"type":"image","id":"%s","quoteToken":"q3Plxr4AgKd","contentProvider":{"type":"line"}}}]}`,
		time.Now().UnixMilli(), user, eventID, redelivery, replyToken, messageID)
}

// flexReply is the reply the fake LINE received with this token.
type flexReply struct {
	ReplyToken string `json:"replyToken"`
	Messages   []struct {
		Type     string         `json:"type"`
		Text     string         `json:"text"`
		AltText  string         `json:"altText"`
		Contents map[string]any `json:"contents"`
	} `json:"messages"`
}

func replies(fake *servertest.LineFake, token string) []flexReply {
	var out []flexReply
	for _, r := range fake.Got("/v2/bot/message/reply") {
		var fr flexReply
		if json.Unmarshal(r.Body, &fr) == nil && fr.ReplyToken == token {
			out = append(out, fr)
		}
	}
	return out
}

// Seed 004 end to end: a signed image webhook → the photo stored → faces
// analysed offline on a real group photo → the fake LINE gets a Flex reply
// whose score is the stored result's → the public result page and its
// image; an unsigned webhook is refused, a redelivery processed once, and
// a corrupt image answered with the seed's friendly message.
func TestHappinessBot(t *testing.T) {
	photo, err := os.ReadFile(shared + "testdata/vision/group-3.jpg")
	if err != nil {
		t.Fatal("test photo:", err)
	}
	fake := servertest.NewLineFake(t, lineToken)
	ts := servertest.Start(t, servertest.WithVisionModels(t), func(c *config.Config) {
		c.LineAPIURL, c.LineDataURL = fake.URL, fake.URL
	})
	if res := ts.Root.Do("POST", "/v1/credentials/happiness-line", map[string]any{"type": "line-channel",
		"credentials": map[string]string{"channelSecret": lineSecret, "channelAccessToken": lineToken}}); res.Status != 201 {
		t.Fatalf("credential: %d %s", res.Status, res.Body)
	}
	for _, f := range []string{"happiness-bot/app.yaml", "happiness-bot/board.yaml", "happiness-bot/result.yaml"} {
		applyFile(t, ts, f)
	}
	var app flow.AppView
	ts.Root.Do("GET", "/v1/flux/apps/happiness-bot", nil).JSON(&app)
	var hook string
	for _, c := range app.Channels {
		if c.Name == "line" {
			hook = c.WebhookURL[strings.Index(c.WebhookURL, "/v1/"):]
		}
	}
	fake.Serve("468789577898262530", photo)
	fake.Profile(guest, "さくら")

	body := lineEvent("01HZ9XG5M4N3P2Q1R0S9T8V7W6", guest, "468789577898262530", "b60d432864f44d079f6d8efe86cf404b", false)
	// Unsigned, or signed with another secret: refused, nothing runs.
	for _, secret := range []string{"", "another-channel-secret"} {
		if res := servertest.LineSigned(ts, hook, secret, body); res.Status != 401 {
			t.Fatalf("webhook signed with %q: %d %s", secret, res.Status, res.Body)
		}
	}
	start := time.Now()
	if res := servertest.LineSigned(ts, hook, lineSecret, body); res.Status != 200 {
		t.Fatalf("webhook: %d %s", res.Status, res.Body)
	}
	// LINE redelivers the same event (same webhookEventId).
	redelivered := strings.Replace(body, `"isRedelivery":false`, `"isRedelivery":true`, 1)
	if res := servertest.LineSigned(ts, hook, lineSecret, redelivered); res.Status != 200 {
		t.Fatalf("redelivery: %d %s", res.Status, res.Body)
	}
	waitFor(t, "the Flex reply", func() bool { return len(replies(fake, "b60d432864f44d079f6d8efe86cf404b")) > 0 })
	elapsed := time.Since(start)
	t.Logf("webhook → reply: %s", elapsed.Round(time.Millisecond))

	// The stored result.
	var entries []struct {
		Time    int64
		Content string
	}
	waitFor(t, "the stored result", func() bool {
		ts.Root.Do("GET", "/v1/data/App/happiness-bot?limit=10", nil).JSON(&entries)
		return len(entries) == 1
	})
	var result struct {
		UserID, DisplayName, MessageID, Image, Annotated string
		Score                                            float64
		Faces                                            int
		Emotions                                         map[string]float64
	}
	if err := json.Unmarshal([]byte(entries[0].Content), &result); err != nil {
		t.Fatal(entries[0].Content, err)
	}
	t.Logf("stored: %s", entries[0].Content)
	if result.UserID != guest || result.MessageID != "468789577898262530" || result.DisplayName != "さくら" ||
		result.Image != "/happiness/"+guest+"/468789577898262530.jpg" || result.Annotated != "/happiness/"+guest+"/468789577898262530-faces.jpg" {
		t.Errorf("result %+v", result)
	}
	// group-3 is three smiling people: faces found, HAPPY the top emotion,
	// and the score is HAPPY summed over the faces.
	if result.Faces < 3 || result.Score < 100 || math.Abs(result.Score-math.Round(result.Emotions["HAPPY"])) > 0.5 {
		t.Errorf("faces %d, score %v, emotions %v", result.Faces, result.Score, result.Emotions)
	}
	for k, v := range result.Emotions {
		if k != "HAPPY" && v >= result.Emotions["HAPPY"] {
			t.Errorf("emotion %s %.1f ≥ HAPPY %.1f", k, v, result.Emotions["HAPPY"])
		}
	}

	// The reply: one Flex message, its score the stored one.
	rs := replies(fake, "b60d432864f44d079f6d8efe86cf404b")
	if len(rs) != 1 || len(rs[0].Messages) != 1 || rs[0].Messages[0].Type != "flex" {
		t.Fatalf("replies %+v", rs)
	}
	flex, _ := json.Marshal(rs[0].Messages[0].Contents)
	score := fmt.Sprintf("幸福度%vpt！！", result.Score)
	if !strings.Contains(string(flex), score) || rs[0].Messages[0].AltText != fmt.Sprintf("幸福度 %v pt！！", result.Score) {
		t.Errorf("flex %s; want %q", flex, score)
	}
	if bytes.Contains(flex, []byte(`"flex":0,"type":"text"`)) || strings.Count(string(flex), `"flex":0`) != 1 {
		t.Errorf("flex carries SDK-style flex:0 on components: %s", flex)
	}
	// Processed once: one download, one reply, one profile look-up, one run.
	if n := len(fake.Got("/v2/bot/message/468789577898262530/content")); n != 1 {
		t.Errorf("%d downloads", n)
	}
	var runs []flow.Run
	waitFor(t, "the run's end", func() bool {
		ts.Root.Do("GET", "/v1/flux/apps/happiness-bot/runs", nil).JSON(&runs)
		return len(runs) > 0 && runs[0].Status != flow.RunRunning
	})
	if len(runs) != 1 || runs[0].Status != flow.RunSucceeded {
		t.Errorf("runs %+v", runs)
	}

	// The photo and its annotated copy are in Files.
	for _, p := range []string{result.Image, result.Annotated} {
		if res := ts.Root.Do("GET", "/v1/files/private"+p+"?metadata", nil); res.Status != 200 || !strings.Contains(string(res.Body), "image/jpeg") {
			t.Errorf("file %s: %d %s", p, res.Status, res.Body)
		}
	}

	// The hero image and the result page the Flex links to.
	hero := rs[0].Messages[0].Contents["hero"].(map[string]any)
	heroURL, _ := hero["url"].(string)
	pageURL, _ := hero["action"].(map[string]any)["uri"].(string)
	op := ts.OperatorID
	wantPage := ts.URL + "/p/" + op + "/happiness-result?user=" + guest + "&message=468789577898262530"
	if pageURL != wantPage {
		t.Errorf("result page link %s; want %s", pageURL, wantPage)
	}
	resp, err := http.Get(heroURL)
	if err != nil {
		t.Fatal(err)
	}
	img, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("hero %s: %d %s", heroURL, resp.StatusCode, img)
	}
	if _, err := jpeg.Decode(bytes.NewReader(img)); err != nil {
		t.Errorf("hero image: %v", err)
	}
	var page struct {
		Title  string
		Panels []struct {
			Kind    string
			Entries []struct{ Content map[string]any }
			Files   map[string]string
		}
	}
	res := ts.Anon().Do("GET", "/v1/public/dashboards/"+op+"/happiness-result?user="+guest, nil)
	if res.Status != 200 {
		t.Fatalf("public page: %d %s", res.Status, res.Body)
	}
	res.JSON(&page)
	if len(page.Panels) != 4 || len(page.Panels[1].Entries) != 1 || page.Panels[1].Entries[0].Content["score"] != result.Score {
		t.Fatalf("public page %s", res.Body)
	}
	signed := page.Panels[0].Files[result.Annotated]
	if resp, err := http.Get(signed); err != nil || resp.StatusCode != 200 {
		t.Errorf("signed image %q: %v %v", signed, err, resp)
	} else {
		resp.Body.Close()
	}
	// A page needs its user; another user's page is empty; the board is
	// not public.
	if res := ts.Anon().Do("GET", "/v1/public/dashboards/"+op+"/happiness-result", nil); res.Status != 400 || !strings.Contains(string(res.Body), "user") {
		t.Errorf("no user: %d %s", res.Status, res.Body)
	}
	res = ts.Anon().Do("GET", "/v1/public/dashboards/"+op+"/happiness-result?user="+guest2, nil)
	page.Panels = nil
	res.JSON(&page)
	if res.Status != 200 || len(page.Panels[1].Entries) != 0 || len(page.Panels[0].Files) != 0 {
		t.Errorf("another user's page: %d %s", res.Status, res.Body)
	}
	if res := ts.Anon().Do("GET", "/v1/public/dashboards/"+op+"/happiness-board", nil); res.Status != 404 {
		t.Errorf("private board: %d %s", res.Status, res.Body)
	}

	// A corrupt image: the friendly reply, nothing stored, the run handled.
	fake.Serve("468789577898262531", []byte("\xff\xd8\xff\xe0 not really a JPEG"))
	bad := lineEvent("01HZ9XG5M4N3P2Q1R0S9T8V7W7", guest2, "468789577898262531", "8cf9239d56244f4197887e939187e19e", false)
	if res := servertest.LineSigned(ts, hook, lineSecret, bad); res.Status != 200 {
		t.Fatalf("webhook: %d %s", res.Status, res.Body)
	}
	waitFor(t, "the friendly reply", func() bool { return len(replies(fake, "8cf9239d56244f4197887e939187e19e")) > 0 })
	rs = replies(fake, "8cf9239d56244f4197887e939187e19e")
	if len(rs[0].Messages) != 1 || rs[0].Messages[0].Type != "text" || rs[0].Messages[0].Text != "画像がうまく読み込めませんでした。" {
		t.Errorf("reply to a corrupt image: %+v", rs)
	}
	waitFor(t, "the run's end", func() bool {
		ts.Root.Do("GET", "/v1/flux/apps/happiness-bot/runs", nil).JSON(&runs)
		return len(runs) == 2 && runs[0].Status != flow.RunRunning
	})
	if runs[0].Status != flow.RunSucceeded {
		t.Errorf("the corrupt image's run: %+v", runs[0])
	}
	ts.Root.Do("GET", "/v1/data/App/happiness-bot?limit=10", nil).JSON(&entries)
	if len(entries) != 1 {
		t.Errorf("%d results stored; want 1", len(entries))
	}
}
