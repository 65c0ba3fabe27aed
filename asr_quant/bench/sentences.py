"""The built-in corpus's sentences: the same twenty everyday scenes in five
languages, written for this project (no third-party text).

None of them is in a quantizer's calibration speech (the engines bring their
own; tests check the two sets are disjoint). No digits anywhere: a recognizer writing "3" for "three" would be
scored as an error that has nothing to do with precision.

Japanese is given as (reference, reading): espeak-ng 1.51 cannot read kanji or
the long-vowel mark, so it speaks a hand-written hiragana reading (particles
は/を/へ spelled as pronounced) while the reference keeps the usual spelling.
"""
from __future__ import annotations

EN = (
    "The library opens early on weekdays, but on Sunday it stays closed until noon.",
    "She packed a warm coat, some sandwiches and a map before leaving for the mountains.",
    "Our train was delayed by heavy snow, so we waited in a small cafe near the station.",
    "Please remember to water the plants and feed the cat while I am away this week.",
    "The engineers tested the new bridge for several months before it opened to traffic.",
    "A gentle rain fell all afternoon, and the children played board games inside.",
    "He learned to play the piano as an adult and now performs at a local restaurant.",
    "The museum has a large collection of old maps, coins and hand painted pottery.",
    "If you turn left at the bakery, you will see the post office across the street.",
    "Farmers in the valley grow apples, pears and cherries on the sunny hillsides above the river.",
    "The meeting was moved to Thursday afternoon because the manager was travelling abroad.",
    "Scientists observed a rare bird nesting on the cliffs along the northern coast.",
    "My neighbour repairs old bicycles in his garage and sells them at the weekend market.",
    "The teacher asked everyone to read the whole chapter carefully before the next lesson.",
    "Fresh bread from the oven filled the whole kitchen with a wonderful smell this morning.",
    "We watched the sun rise slowly over the lake while drinking hot tea from a flask.",
    "The hospital is looking for friendly volunteers to read stories to young patients.",
    "After the storm passed, the streets were covered with leaves and broken branches.",
    "Good software is tested carefully, documented clearly and easy to change.",
    "The old lighthouse on the rocks guided ships safely into the harbour for many years.",
)

ZH = (
    "图书馆工作日很早开门，但是星期天要到中午才开放。",
    "她出发去山里之前，带了一件厚外套、几个三明治和一张地图。",
    "因为大雪，我们的火车晚点了，只好在车站旁边的小咖啡馆里等待。",
    "我这个星期不在家，请记得给花浇水，还要按时喂猫。",
    "工程师们花了几个月测试这座新桥，然后才让车辆通行。",
    "整个下午都在下小雨，孩子们在屋里玩棋盘游戏。",
    "他成年以后才开始学钢琴，现在每周在附近的餐厅演奏。",
    "这家博物馆收藏了很多古老的地图、钱币和手绘陶器。",
    "在面包店那里向左转，你就能看到街对面的邮局。",
    "山谷里的农民在向阳的山坡上种苹果、梨和樱桃。",
    "因为经理出国了，会议改到了星期四下午举行。",
    "科学家在北部海岸的悬崖上发现了一种罕见的鸟在筑巢。",
    "我的邻居在车库里修理旧自行车，周末拿到市场上去卖。",
    "老师让大家在下节课之前把课文认真读一遍。",
    "刚出炉的面包让整个厨房都充满了香味。",
    "我们一边喝着热茶，一边看太阳从湖面上升起。",
    "医院正在招募志愿者给生病的孩子们讲故事。",
    "暴风雨过后，街道上到处都是落叶和折断的树枝。",
    "好的软件需要认真测试，文档清楚，而且容易修改。",
    "这座老灯塔多年来一直引导船只安全进港。",
)

YUE = (
    "图书馆平日好早开门，但系星期日要到中午先开。",
    "佢去行山之前，带咗件厚褛、几份三文治同埋一张地图。",
    "因为落大雪，我哋架火车迟咗，唯有喺车站隔篱间咖啡店度等。",
    "我呢个礼拜唔喺屋企，记得帮我淋花同埋准时喂猫呀，唔该晒。",
    "啲工程师测试咗呢条新桥几个月，先至俾车行。",
    "成个下昼都落紧毛毛雨，啲细路只可以喺屋入面玩棋。",
    "佢大个咗先开始学琴，而家每个礼拜喺附近间餐厅表演。",
    "呢间博物馆收藏咗好多旧地图、钱币同手绘陶器。",
    "你喺面包铺嗰度转左，就会见到对面街嘅邮政局。",
    "山谷入面啲农夫喺山坡度种苹果、梨同车厘子。",
    "因为经理出咗国，个会要改咗去星期四下昼先开。",
    "科学家喺北面海岸嘅悬崖上面发现咗一种好少见嘅雀仔。",
    "我隔篱屋个邻居喺车房整旧单车，周末攞去市场卖。",
    "老师叫大家下堂之前将篇课文认真咁读多一次。",
    "啱啱出炉嘅面包好香，令成个厨房都充满住面包味。",
    "我哋一路饮热茶，一路睇住太阳慢慢喺湖面升起。",
    "医院而家搵紧义工，去同病咗嘅小朋友讲故事。",
    "打完风之后，条街周围都系落叶同断咗嘅树枝。",
    "好嘅软件要小心测试，文件要写得清楚，仲要容易改。",
    "呢座旧灯塔好多年嚟一直带住啲船安全入港。",
)

JA = (
    ("図書館は平日は朝早く開きますが、日曜日はお昼まで閉まっています。",
     "としょかんわ へいじつわ あさ はやく ひらきますが、にちようびわ おひるまで しまっています。"),
    ("彼女は山へ出かける前に、厚いコートとサンドイッチと地図を用意しました。",
     "かのじょわ やまえ でかける まえに、あつい こおとと さんどいっちと ちずお よういしました。"),
    ("大雪で電車が遅れたので、駅の近くの小さな喫茶店で待ちました。",
     "おおゆきで でんしゃが おくれたので、えきの ちかくの ちいさな きっさてんで まちました。"),
    ("今週は留守にするので、花に水をやって猫にえさをあげてください。",
     "こんしゅうわ るすに するので、はなに みずお やって ねこに えさお あげてください。"),
    ("技術者たちは新しい橋を何か月も試験してから開通させました。",
     "ぎじゅつしゃたちわ あたらしい はしお なんかげつも しけんしてから かいつう させました。"),
    ("午後はずっと小雨が降っていて、子供たちは家の中でゲームをしました。",
     "ごごわ ずっと こさめが ふっていて、こどもたちわ いえの なかで げえむお しました。"),
    ("彼は大人になってからピアノを習い始め、今は近所のレストランで演奏しています。",
     "かれわ おとなに なってから ぴあのお ならいはじめ、いまわ きんじょの れすとらんで えんそう しています。"),
    ("その博物館には古い地図や硬貨、手描きの陶器がたくさんあります。",
     "その はくぶつかんにわ ふるい ちずや こうか、てがきの とうきが たくさん あります。"),
    ("パン屋の角を左に曲がると、通りの向かいに郵便局が見えます。",
     "ぱんやの かどお ひだりに まがると、とおりの むかいに ゆうびんきょくが みえます。"),
    ("谷の農家は日当たりの良い斜面でりんごや梨やさくらんぼを育てています。",
     "たにの のうかわ ひあたりの よい しゃめんで りんごや なしや さくらんぼお そだてています。"),
    ("部長が海外出張中なので、会議は木曜日の午後に変更されました。",
     "ぶちょうが かいがい しゅっちょうちゅう なので、かいぎわ もくようびの ごごに へんこう されました。"),
    ("科学者たちは北の海岸の崖で珍しい鳥が巣を作っているのを観察しました。",
     "かがくしゃたちわ きたの かいがんの がけで めずらしい とりが すお つくっているのお かんさつしました。"),
    ("隣の人はガレージで古い自転車を直して、週末の市場で売っています。",
     "となりの ひとわ がれえじで ふるい じてんしゃお なおして、しゅうまつの いちばで うっています。"),
    ("先生は次の授業までに教科書の最初の章を読んでおくように言いました。",
     "せんせいわ つぎの じゅぎょうまでに きょうかしょの さいしょの しょうお よんでおくように いいました。"),
    ("焼きたてのパンのいい香りが朝から台所いっぱいに広がりました。",
     "やきたての ぱんの いい かおりが あさから だいどころ いっぱいに ひろがりました。"),
    ("温かいお茶を飲みながら、静かな湖から昇る朝日を眺めました。",
     "あたたかい おちゃお のみながら、しずかな みずうみから のぼる あさひお ながめました。"),
    ("病院では子供たちに本を読んであげるボランティアを募集しています。",
     "びょういんでわ こどもたちに ほんお よんで あげる ぼらんてぃあお ぼしゅう しています。"),
    ("嵐が過ぎた後、町の道は落ち葉と折れた枝でいっぱいでした。",
     "あらしが すぎた あと、まちの みちわ おちばと おれた えだで いっぱいでした。"),
    ("良いソフトウェアは丁寧にテストされ、説明が分かりやすく、変更も簡単です。",
     "よい そふとうえあわ ていねいに てすと され、せつめいが わかりやすく、へんこうも かんたんです。"),
    ("古い灯台は長い間、船を安全に港へ導いてきました。",
     "ふるい とうだいわ ながい あいだ、ふねお あんぜんに みなとえ みちびいて きました。"),
)

KO = (
    "도서관은 평일에는 아침 일찍 문을 열지만 일요일에는 점심때까지 닫혀 있습니다.",
    "그녀는 산에 가기 전에 두꺼운 외투와 샌드위치, 그리고 지도를 챙겼습니다.",
    "폭설 때문에 기차가 늦어져서 우리는 역 근처의 작은 카페에서 기다렸습니다.",
    "이번 주에는 집에 없으니까 화분에 물을 주고 고양이 밥도 챙겨 주세요.",
    "기술자들은 새 다리를 몇 달 동안 시험한 후에 차량 통행을 허가했습니다.",
    "오후 내내 가랑비가 내려서 아이들은 집 안에서 보드게임을 했습니다.",
    "그는 어른이 되어서 피아노를 배우기 시작했고 지금은 동네 식당에서 연주합니다.",
    "그 박물관에는 오래된 지도와 동전, 손으로 그린 도자기가 많이 있습니다.",
    "빵집에서 왼쪽으로 돌면 길 건너편에 우체국이 보입니다.",
    "골짜기의 농부들은 햇볕이 잘 드는 언덕에서 사과와 배와 체리를 기릅니다.",
    "부장님이 해외 출장 중이라서 회의가 목요일 오후로 바뀌었습니다.",
    "과학자들은 북쪽 해안의 절벽에서 희귀한 새가 둥지를 트는 것을 관찰했습니다.",
    "옆집 사람은 차고에서 낡은 자전거를 고쳐서 주말 시장에서 팝니다.",
    "선생님은 다음 수업 전까지 교과서를 읽어 오라고 말씀하셨습니다.",
    "갓 구운 빵 냄새가 아침부터 부엌 가득 퍼져서 모두 행복했습니다.",
    "따뜻한 차를 마시면서 호수 위로 떠오르는 해를 바라보았습니다.",
    "병원에서는 아이들에게 책을 읽어 줄 자원봉사자를 모집하고 있습니다.",
    "폭풍이 지나간 뒤 길은 낙엽과 부러진 나뭇가지로 가득했습니다.",
    "좋은 소프트웨어는 꼼꼼하게 시험하고 설명이 명확하며 고치기 쉽습니다.",
    "오래된 등대는 오랫동안 배들을 안전하게 항구로 이끌어 왔습니다.",
)


def sentences(language: str) -> list[tuple[str, str]]:
    """(reference text, text espeak-ng speaks) for one language."""
    if language == "ja":
        return [(ref, reading) for ref, reading in JA]
    table = {"en": EN, "zh": ZH, "yue": YUE, "ko": KO}[language]
    return [(s, s) for s in table]
