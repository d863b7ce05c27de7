package vision

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeRekognition answers the AWS JSON 1.1 protocol as Rekognition does:
// POST / with X-Amz-Target RekognitionService.<Op>, a SigV4 signature,
// and JSON replies or {"__type","Message"} errors.
type fakeRekognition struct {
	t      *testing.T
	mu     sync.Mutex
	target string
	body   map[string]any
	calls  int
	status int
	reply  string
	delay  time.Duration
}

func (f *fakeRekognition) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		f.t.Errorf("body is not JSON: %v", err)
	}
	if r.Method != "POST" || r.URL.Path != "/" || r.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		f.t.Errorf("%s %s %s; want POST / application/x-amz-json-1.1", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}
	if a := r.Header.Get("Authorization"); !strings.HasPrefix(a, "AWS4-HMAC-SHA256 Credential=AKIATESTKEY/") || !strings.Contains(a, "/eu-west-1/rekognition/aws4_request") {
		f.t.Errorf("Authorization %q is not a SigV4 signature for AKIATESTKEY in eu-west-1", a)
	}
	f.mu.Lock()
	f.target, f.body = r.Header.Get("X-Amz-Target"), body
	f.calls++
	status, reply, delay := f.status, f.reply, f.delay
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if status == 0 {
		status = 200
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", "c5bbd1a9-0000-4000-8000-000000000000")
	w.WriteHeader(status)
	io.WriteString(w, reply)
}

// detectFacesReply is DetectFaces' documented reply (Attributes ALL,
// abridged to the members flows use plus a few more).
const detectFacesReply = `{"FaceDetails":[{
  "BoundingBox":{"Width":0.2,"Height":0.3,"Left":0.4,"Top":0.1},
  "AgeRange":{"Low":25,"High":35},
  "Smile":{"Value":true,"Confidence":97.1},
  "Emotions":[{"Type":"HAPPY","Confidence":96.5},{"Type":"CALM","Confidence":2.1},{"Type":"SURPRISED","Confidence":0.6},
    {"Type":"FEAR","Confidence":0.1},{"Type":"SAD","Confidence":0.1},{"Type":"CONFUSED","Confidence":0.1},
    {"Type":"DISGUSTED","Confidence":0.1},{"Type":"ANGRY","Confidence":0.05}],
  "Landmarks":[{"Type":"eyeLeft","X":0.45,"Y":0.2}],
  "Pose":{"Roll":1.5,"Yaw":-3.2,"Pitch":4.1},
  "Quality":{"Brightness":80.1,"Sharpness":92.2},
  "Confidence":99.9},
 {"BoundingBox":{"Width":0.1,"Height":0.15,"Left":0.05,"Top":0.7},
  "Emotions":[{"Type":"SAD","Confidence":70}],"Confidence":80.0}],
 "OrientationCorrection":"ROTATE_0"}`

const detectLabelsReply = `{"Labels":[
  {"Name":"Person","Confidence":99.2,"Instances":[
     {"BoundingBox":{"Width":0.1,"Height":0.4,"Left":0.1,"Top":0.3},"Confidence":99.2},
     {"BoundingBox":{"Width":0.1,"Height":0.4,"Left":0.7,"Top":0.3},"Confidence":91.0},
     {"BoundingBox":{"Width":0.05,"Height":0.2,"Left":0.45,"Top":0.1},"Confidence":60.5}],
   "Parents":[],"Aliases":[{"Name":"Human"}],"Categories":[{"Name":"Person Description"}]}],
 "LabelModelVersion":"3.0"}`

func (f *fakeRekognition) set(status int, reply string, delay time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.reply, f.delay = status, reply, delay
}

// seen returns the last request's target and body, and the call count.
func (f *fakeRekognition) seen() (string, map[string]any, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.target, f.body, f.calls
}

func newRekognitionTest(t *testing.T) (*fakeRekognition, *Rekognition, *testEnv) {
	env := newTestEnv(t)
	env.addCredential(t, "aws", "aws-credentials", map[string]any{"accessKeyId": "AKIATESTKEY", "secretAccessKey": "test-secret-key"})
	f := &fakeRekognition{t: t}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	p := NewRekognition(RekognitionConfig{Region: "eu-west-1", Endpoint: srv.URL, CredentialsID: "aws", Credentials: env.creds,
		MaxAttempts: 1, Timeout: 500 * time.Millisecond})
	return f, p, env
}

func TestRekognitionDetectFaces(t *testing.T) {
	f, p, env := newRekognitionTest(t)
	f.set(200, detectFacesReply, 0)
	img := testJPEG(t, 40, 30)
	ctx := WithOperator(t.Context(), env.op)
	res, err := p.Analyze(ctx, &Request{Task: TaskFaces, Image: img})
	if err != nil {
		t.Fatal(err)
	}
	target, body, _ := f.seen()
	if target != "RekognitionService.DetectFaces" {
		t.Fatalf("X-Amz-Target %q", target)
	}
	im, _ := body["Image"].(map[string]any)
	if im["Bytes"] != base64.StdEncoding.EncodeToString(img) {
		t.Fatalf("Image.Bytes is not the image in base64")
	}
	if a, _ := body["Attributes"].([]any); len(a) != 1 || a[0] != "ALL" {
		t.Fatalf("Attributes %v; want [ALL]", body["Attributes"])
	}
	// The result is Rekognition's FaceDetails as they came.
	var want map[string]any
	json.Unmarshal([]byte(detectFacesReply), &want)
	got, _ := json.Marshal(res["FaceDetails"])
	var gotV any
	json.Unmarshal(got, &gotV)
	wantJSON, _ := json.Marshal(want["FaceDetails"])
	var wantV any
	json.Unmarshal(wantJSON, &wantV)
	if !jsonClose(gotV, wantV) {
		t.Fatalf("FaceDetails\n got %s\nwant %s", got, wantJSON)
	}

	// MinScore and ROI filter faces.
	res, err = p.Analyze(ctx, &Request{Task: TaskFaces, Image: img, MinScore: 0.9})
	if err != nil || len(res["FaceDetails"].([]any)) != 1 {
		t.Fatalf("minScore: %v %v", res, err)
	}
	res, err = p.Analyze(ctx, &Request{Task: TaskFaces, Image: img, ROI: &Rect{0, 0.5, 0.5, 0.5}})
	if err != nil || len(res["FaceDetails"].([]any)) != 1 {
		t.Fatalf("roi: %v %v", res, err)
	}

	// No faces: an empty list, not null.
	f.set(200, `{"FaceDetails":[]}`, 0)
	res, err = p.Analyze(ctx, &Request{Task: TaskFaces, Image: img})
	if err != nil || res["FaceDetails"] == nil || len(res["FaceDetails"].([]any)) != 0 {
		t.Fatalf("no faces: %v %v", res, err)
	}
}

// jsonClose compares JSON values, numbers within float32 precision (the
// SDK holds Rekognition's numbers as float32).
func jsonClose(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if !jsonClose(v, y[k]) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonClose(x[i], y[i]) {
				return false
			}
		}
		return true
	case float64:
		y, ok := b.(float64)
		d := x - y
		return ok && d < 1e-4 && d > -1e-4
	}
	return a == b
}

func TestRekognitionPeople(t *testing.T) {
	f, p, env := newRekognitionTest(t)
	f.set(200, detectLabelsReply, 0)
	ctx := WithOperator(t.Context(), env.op)
	res, err := p.Analyze(ctx, &Request{Task: TaskPeople, Image: testJPEG(t, 40, 30), Capacity: 4, MinScore: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	target, body, _ := f.seen()
	if target != "RekognitionService.DetectLabels" {
		t.Fatalf("X-Amz-Target %q", target)
	}
	if body["MinConfidence"] != 50.0 {
		t.Fatalf("MinConfidence %v", body["MinConfidence"])
	}
	settings, _ := body["Settings"].(map[string]any)
	gl, _ := settings["GeneralLabels"].(map[string]any)
	if inc, _ := gl["LabelInclusionFilters"].([]any); len(inc) != 1 || inc[0] != "Person" {
		t.Fatalf("Settings %v", body["Settings"])
	}
	if res["person_count"] != 3 || res["crowding_level"] != 75.0 || len(res["boxes"].([]any)) != 3 {
		t.Fatalf("result %v", res)
	}
	res, err = p.Analyze(ctx, &Request{Task: TaskPeople, Image: testJPEG(t, 40, 30), ROI: &Rect{0, 0.3, 1, 0.7}})
	if err != nil || res["person_count"] != 2 || res["crowding_level"] != nil {
		t.Fatalf("roi: %v %v", res, err)
	}
}

func TestRekognitionErrors(t *testing.T) {
	f, p, env := newRekognitionTest(t)
	ctx := WithOperator(t.Context(), env.op)
	img := testJPEG(t, 8, 8)
	cases := []struct {
		status    int
		reply     string
		delay     time.Duration
		want      int
		retryable bool
		msg       []string
	}{
		{400, `{"__type":"InvalidImageFormatException","Message":"Request has invalid image format"}`, 0, 422, false, []string{"InvalidImageFormatException", "invalid image format"}},
		{400, `{"__type":"ImageTooLargeException","Message":"Image size is too large"}`, 0, 413, false, []string{"ImageTooLargeException"}},
		{400, `{"__type":"InvalidParameterException","Message":"Request has invalid parameters"}`, 0, 422, false, []string{"InvalidParameterException"}},
		{400, `{"__type":"AccessDeniedException","Message":"User is not authorized"}`, 0, 422, false, []string{"AccessDeniedException"}},
		{400, `{"__type":"ThrottlingException","Message":"Slow down"}`, 0, 502, true, []string{"ThrottlingException"}},
		{400, `{"__type":"ProvisionedThroughputExceededException","Message":"limit"}`, 0, 502, true, nil},
		{500, `{"__type":"InternalServerError","Message":"Internal server error"}`, 0, 502, true, []string{"InternalServerError"}},
		{503, `{"__type":"ServiceUnavailable"}`, 0, 502, true, nil},
		{200, `{"FaceDetails":[]}`, 2 * time.Second, 504, true, []string{"timed out"}},
	}
	for _, c := range cases {
		f.set(c.status, c.reply, c.delay)
		_, err := p.Analyze(ctx, &Request{Task: TaskFaces, Image: img})
		wantError(t, err, c.want, c.retryable, c.msg...)
	}

	// Requests that never reach AWS.
	f.set(200, `{"FaceDetails":[]}`, 0)
	_, _, before := f.seen()
	_, err := p.Analyze(ctx, &Request{Task: TaskPrompt, Prompt: "x", Image: img})
	wantError(t, err, 400, false, "prompt task is not supported")
	_, err = p.Analyze(ctx, &Request{Task: TaskFaces, Image: make([]byte, MaxRekognitionImage+1)})
	wantError(t, err, 413, false, "at most")
	_, err = p.Analyze(ctx, &Request{Task: TaskFaces, Image: img, Options: map[string]any{"credentials": "missing"}})
	wantError(t, err, 400, false, `credential "missing" not found`)
	p2 := NewRekognition(RekognitionConfig{Credentials: env.creds})
	_, err = p2.Analyze(ctx, &Request{Task: TaskFaces, Image: img})
	wantError(t, err, 400, false, "no AWS credentials")
	if _, _, after := f.seen(); after != before {
		t.Fatalf("%d calls reached the fake", after-before)
	}
}
